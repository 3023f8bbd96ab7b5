"""Discover an IOI circuit from patching sweeps on *fit* prompts (the rule the suite states).

Rule (fixed before looking at any held-out data; not tuned per model):

1. On ``n_fit`` fit prompts (``make_split(model, "ioi", seed).fit``, ABC corruption, fit
   templates), run two exact head_out sweeps with the logit-difference metric:
   denoising (clean head output into the corrupted run: sufficiency) and noising (corrupted
   head output into the clean run: necessity).
2. A head's score is ``max(|denoise recovery|, |noise drop|)``, both normalised by the
   clean-corrupted gap.
3. The candidate circuit is every head with score >= ``min_score`` (default 0.05, i.e. 5% of
   the gap), at most ``max_heads`` (default 12) by score; at least the top 2 heads.
4. Pruning, still on fit prompts: run the minimality check (mean ablation over ABC, 1% bar) on
   the candidate and drop the heads it rejects (once). Single-head patching scores cannot see
   redundancy; the minimality search over subsets K can.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

import mi_assert
from mi_assert.prompts.generators import make_split


@dataclass
class DiscoveredCircuit:
    heads: list[tuple[int, int]]
    scores: dict[str, float]
    denoise: Any  # SweepResult
    noise: Any  # SweepResult
    pruned: list[str]

    def labels(self) -> list[str]:
        return [f"L{layer}H{head}" for layer, head in self.heads]


def discover_ioi_circuit(handle: Any, seed: int = 0, n_fit: int = 48, min_score: float = 0.05,
                         max_heads: int = 12) -> DiscoveredCircuit:
    fit = make_split(handle, "ioi", seed, n_prompts=n_fit, corruption="abc").fit
    denoise = mi_assert.patching_sweep(handle, fit, site="head_out")
    noise = mi_assert.patching_sweep(handle, fit, site="head_out", direction="noise")
    recovery = denoise.normalised()
    # noising runs the clean prompts with corrupted heads: its "clean" is the corrupted run
    drop = (noise.corrupted_value - noise.values) / (noise.corrupted_value - noise.clean_value)
    score = torch.maximum(recovery.abs(), drop.abs())
    order = torch.argsort(score.flatten(), descending=True)
    n_heads = score.shape[1]
    heads: list[tuple[int, int]] = []
    for flat in order.tolist():
        layer, head = divmod(flat, n_heads)
        if len(heads) >= max_heads or (len(heads) >= 2 and float(score[layer, head]) < min_score):
            break
        heads.append((layer, head))
    heads.sort()
    pruned: list[str] = []
    try:
        mi_assert.assert_circuit_minimality(handle, fit, heads, min_effect=0.01, ablation="mean",
                                            reference="corrupted", n_subsets=3, seeds=[seed])
    except AssertionError as failed:
        evidence = failed.evidence  # type: ignore[attr-defined]
        rejected = {m.claim.split(" ")[0] for m in evidence.family if not m.passed}
        pruned = sorted(rejected)
        kept = [h for h in heads if f"L{h[0]}H{h[1]}" not in rejected]
        heads = kept if len(kept) >= 2 else heads
    scores = {f"L{layer}H{head}": round(float(score[layer, head]), 3) for layer, head in heads}
    return DiscoveredCircuit(heads, scores, denoise, noise, pruned)
