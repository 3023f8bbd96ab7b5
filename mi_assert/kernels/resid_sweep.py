"""Residual-stream patching per layer and position (``get_act_patch_resid_pre``), stacked.

Variant (L, p) is the corrupted run with ``resid_pre`` of layer L at position p replaced by the
clean one; it enters the stacked run before attention L (see ``stacked.py``). A patch at a
position after the one the metric reads cannot change it (causal attention), so those variants
are the corrupted baseline without running anything.
"""

from __future__ import annotations

import torch
from torch import Tensor

from mi_assert.kernels.chunking import bytes_per_variant, chunks, variants_per_chunk
from mi_assert.kernels.functional import FunctionalModel, run_and_cache
from mi_assert.kernels.metric_reader import MetricReader
from mi_assert.kernels.stacked import run_stacked


def resid_pre_sweep(
    fm: FunctionalModel,
    clean_tokens: Tensor,
    corrupted_tokens: Tensor,
    reader: MetricReader,
    memory_budget_bytes: int | None = None,
    max_variants_per_chunk: int | None = None,
) -> Tensor:
    """``[n_layers, pos]``: mean over prompts of the metric with clean ``resid_pre`` patched in."""
    n_pos = corrupted_tokens.shape[1]
    n_keep = reader.n_keep or n_pos
    clean = clean_tokens[:, :n_keep]
    corrupted = corrupted_tokens[:, :n_keep]
    batch = corrupted.shape[0]
    n_layers = fm.n_layers
    clean_pre = run_and_cache(fm, clean, n_layers, want_resid_pre=True).resid_pre
    corr_pre = run_and_cache(fm, corrupted, n_layers, want_resid_pre=True).resid_pre

    last_only = reader.position is not None
    results = torch.empty(n_layers, n_pos, dtype=torch.float64, device=corrupted.device)
    if n_keep < n_pos:
        # patches after the metric's position: exactly the corrupted run's metric
        base = fm.logits(_final_unpatched(fm, corrupted, last_only))
        results[:, n_keep:] = reader(base).double().mean()

    variants = [(layer, pos) for layer in range(n_layers) for pos in range(n_keep)]
    per_variant = bytes_per_variant(fm, batch, n_keep, 1 if last_only else n_keep,
                                    fm.W_E.element_size())
    size = variants_per_chunk(per_variant, len(variants), memory_budget_bytes,
                              corrupted.device, max_variants_per_chunk)
    for rows in chunks(len(variants), size):
        chunk = [variants[i] for i in rows]

        def fill(step: int, idx: range, chunk: list[tuple[int, int]] = chunk) -> Tensor:
            layer = chunk[idx.start][0]
            positions = torch.tensor([chunk[i][1] for i in idx], device=corrupted.device)
            new = corr_pre[layer].unsqueeze(0).repeat(len(idx), 1, 1, 1)
            rows_ = torch.arange(len(idx), device=corrupted.device)
            new[rows_, :, positions] = clean_pre[layer][:, positions].transpose(0, 1)
            return new

        final = run_stacked(fm, [2 * layer for layer, _ in chunk], fill, batch, n_keep,
                            fm.W_E.dtype, corrupted.device, last_only)
        logits = fm.logits(final)
        for j, (layer, pos) in enumerate(chunk):
            results[layer, pos] = reader(logits[j]).double().mean()
    return results.to(fm.W_E.dtype)


def _final_unpatched(fm: FunctionalModel, tokens: Tensor, last_only: bool) -> Tensor:
    x = fm.embed(tokens)
    for layer in range(fm.n_layers):
        x = fm.block(layer, x)
    return x[:, -1] if last_only else x
