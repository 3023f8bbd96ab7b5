"""The circuit against random circuits of the same size (Shi et al. 2024's sufficiency test).

Rule (fixed before measuring; not tuned per model or until it passes):

* On each held-out prompt draw (``make_split(model, "ioi", seed).heldout``, ABC corruption, the
  same prompts ``assert_patching_recovery(prompts="ioi", seeds=...)`` uses), measure the
  denoising recovery ``R = (mean(patched) - mean(corrupted)) / (mean(clean) - mean(corrupted))``
  of the circuit and of ``N_DRAWS = 100`` random head sets of the circuit's size.
* Random sets are drawn i.i.d. (with replacement across draws) and uniformly from all
  same-size subsets of **all** heads, as Shi et al. draw from all components: a draw may share
  heads with the circuit, or even equal it. The draws are seeded (generator seed = the prompt
  seed), so a run is reproducible.
* The circuit "beats" a draw when its R is strictly greater (a tie, e.g. a draw equal to the
  circuit, counts against it). The claim: P(circuit beats a random same-size circuit) > ``Q =
  0.9``, at ``ALPHA = 0.05``, on every held-out seed, judged by the claims engine like every
  other claim (one unit per draw; 100 of 100 wins bound the rate at 0.05^(1/100) = 0.97, the
  exact binomial bound, and about 96 wins are needed).

mi_assert has no "compare against random circuits" claim, so this module measures it itself:
one clean and one corrupted forward per seed, then every random set patched in stacked
batches (rows ``s * B .. (s + 1) * B`` of a batch are set ``s``), so 101 sets cost a few large
forward passes instead of 101 calls. The circuit's own R from this path is checked against
``check_patching_recovery`` (a structural check: the batched path must agree with the library).

:func:`control_evidence` hands the per-draw wins to the engine (a
:class:`~mi_assert.stats.claims.ClaimSpec`, one row per held-out seed, the worst row decides),
so the verdict lands in the report and fails with ``ClaimFailed`` like any claim.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from mi_assert.causal.components import parse_component
from mi_assert.causal.metrics import evaluate_metric, metric_for_prompts
from mi_assert.prompts.generators import make_split
from mi_assert.stats.claims import ClaimSpec
from mi_assert.stats.evidence import Evidence
from mi_assert.stats.statistic import Mean

N_DRAWS = 100
Q = 0.9
ALPHA = 0.05
#: head sets patched per stacked forward pass (bounds the activation memory)
SETS_PER_FORWARD = 26

Head = tuple[int, int]


@dataclass(frozen=True)
class RandomControl:
    prompt_seed: int
    circuit: tuple[Head, ...]
    circuit_recovery: float
    random_sets: tuple[tuple[Head, ...], ...]
    random_recovery: np.ndarray  # [N_DRAWS]
    n_prompts: int

    @property
    def beats(self) -> np.ndarray:
        """1.0 per random draw the circuit beats (strictly), else 0.0."""
        return (self.circuit_recovery > self.random_recovery).astype(np.float64)

    @property
    def wins(self) -> int:
        return int(self.beats.sum())

    def summary(self) -> str:
        r = self.random_recovery
        q50, q90, q99 = np.quantile(r, [0.5, 0.9, 0.99])
        return (f"seed {self.prompt_seed}: circuit R {self.circuit_recovery:.3f} beats "
                f"{self.wins}/{len(r)} random same-size sets (median {q50:.3f}, q90 {q90:.3f}, "
                f"q99 {q99:.3f}, max {r.max():.3f})")


def draw_random_sets(n_layers: int, n_heads: int, size: int, n_draws: int,
                     seed: int) -> list[tuple[Head, ...]]:
    """``n_draws`` uniform random ``size``-subsets of all heads (i.i.d. draws, seeded)."""
    heads = [(layer, head) for layer in range(n_layers) for head in range(n_heads)]
    gen = torch.Generator().manual_seed(int(seed))
    return [tuple(sorted(heads[int(i)] for i in torch.randperm(len(heads), generator=gen)[:size]))
            for _ in range(n_draws)]


def _stacked_edit(clean_z: torch.Tensor, mask: torch.Tensor):
    """hook_z edit for a batch of ``S`` stacked copies of the corrupted prompts: copy ``s``
    gets the clean output of the heads where ``mask[s]`` (shape [S, n_heads]) is set."""

    def edit(act: torch.Tensor) -> torch.Tensor:
        n_sets = mask.shape[0]
        view = act.reshape(n_sets, -1, *act.shape[1:])  # [S, B, pos, n_heads, d_head]
        m = mask.to(act.device)[:, None, None, :, None]
        return torch.where(m, clean_z.to(act.device, act.dtype)[None], view).reshape(act.shape)

    return edit


def _recoveries(handle: Any, clean: torch.Tensor, corrupted: torch.Tensor, metric: Any,
                sets: Sequence[Sequence[Head]]) -> tuple[np.ndarray, float, float]:
    """Mean patched metric per set, and the clean and corrupted means."""
    hooks = {layer: parse_component(handle, (layer, 0)).hook for layer in range(handle.n_layers)}
    n_prompts = clean.shape[0]

    def values(logits: torch.Tensor) -> np.ndarray:
        return evaluate_metric(metric, logits, n_prompts).detach().cpu().double().numpy()

    with torch.no_grad():
        clean_logits, cache = handle.run_with_cache(clean, list(hooks.values()))
        corr_logits, _ = handle.run_with_cache(corrupted, [])
        means = []
        for start in range(0, len(sets), SETS_PER_FORWARD):
            chunk = sets[start:start + SETS_PER_FORWARD]
            mask = torch.zeros(len(chunk), handle.n_layers, handle.n_heads, dtype=torch.bool)
            for s, heads in enumerate(chunk):
                for layer, head in heads:
                    mask[s, layer, head] = True
            edits = {hooks[layer]: _stacked_edit(cache[hooks[layer]], mask[:, layer])
                     for layer in range(handle.n_layers) if bool(mask[:, layer].any())}
            logits, _ = handle.run_with_edits(corrupted.repeat(len(chunk), 1), edits)
            for s in range(len(chunk)):
                means.append(values(logits[s * n_prompts:(s + 1) * n_prompts]).mean())
    return np.asarray(means), float(values(clean_logits).mean()), float(values(corr_logits).mean())


def random_circuit_control(handle: Any, circuit: Sequence[Head], prompt_seed: int,
                           prompt_kwargs: Mapping[str, Any], n_draws: int = N_DRAWS) -> RandomControl:
    ps = make_split(handle, "ioi", prompt_seed, **dict(prompt_kwargs)).heldout
    metric = metric_for_prompts("logit_diff", ps)
    clean, corrupted = handle.to_tokens(ps.clean), handle.to_tokens(ps.corrupted)
    circuit = tuple(sorted(tuple(h) for h in circuit))
    random_sets = draw_random_sets(handle.n_layers, handle.n_heads, len(circuit), n_draws, prompt_seed)
    patched, m_clean, m_corr = _recoveries(handle, clean, corrupted, metric, [circuit, *random_sets])
    recovery = (patched - m_corr) / (m_clean - m_corr)
    return RandomControl(prompt_seed, circuit, float(recovery[0]), tuple(random_sets),
                         recovery[1:], int(clean.shape[0]))


def control_evidence(controls: Sequence[RandomControl], model_info: Mapping[str, Any]) -> Evidence:
    """One row per held-out seed (its draws are the units); every seed must pass."""
    label = "+".join(f"L{la}H{h}" for la, h in controls[0].circuit)
    return ClaimSpec(
        claim=f"circuit {label} beats > {Q:g} of random same-size head sets (denoise recovery)",
        metric="fraction of random same-size circuits beaten",
        samples={c.prompt_seed: Mean(c.beats, unit="random circuits") for c in controls},
        threshold=Q, value_range=(0.0, 1.0), unit="random circuits", hist_figure=False,
        settings={"n_draws": N_DRAWS, "q": Q, "draws": "uniform same-size subsets of all heads "
                  "(may include circuit heads), i.i.d., generator seed = prompt seed",
                  "beats": "strictly greater recovery (ties count against)",
                  "prompts": "ioi held-out", "n_prompts": controls[0].n_prompts},
        model_info=dict(model_info),
        details={"per_seed": "\n".join(c.summary() for c in controls)},
        figures={"random_recovery": {
            "kind": "hist", "data": [c.random_recovery for c in controls],
            "labels": [f"seed {c.prompt_seed}" for c in controls],
            "xlabel": "denoise recovery of a random same-size head set", "ylabel": "draws",
            "title": f"random same-size circuits vs {label} (line: circuit, seed "
                     f"{controls[0].prompt_seed})",
            "threshold": controls[0].circuit_recovery}},
    ).evaluate(ALPHA)
