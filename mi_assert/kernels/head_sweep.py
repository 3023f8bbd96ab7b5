"""All-heads output patching (``get_act_patch_attn_head_out_all_pos``), stacked and batched.

Patching clean ``z`` of head h at layer L into the corrupted run changes nothing before layer
L's output projection, and there only by a rank-``d_head`` term:
``resid_mid_L(variant) = resid_mid_L(corrupted) + (z_clean[h] - z_corr[h]) @ W_O[L, h]``. So each
variant enters the stacked run before MLP L with that residual, and runs the rest of the model
together with every other variant (see ``stacked.py``). On parallel-block models the MLP reads
``resid_pre``, so the variant enters after layer L: ``resid_post_L(corrupted)`` plus the update.
"""

from __future__ import annotations

import torch
from torch import Tensor

from mi_assert.kernels.chunking import bytes_per_variant, chunks, variants_per_chunk
from mi_assert.kernels.functional import FunctionalModel, run_and_cache
from mi_assert.kernels.metric_reader import MetricReader
from mi_assert.kernels.stacked import run_stacked


def head_out_sweep(
    fm: FunctionalModel,
    clean_tokens: Tensor,
    corrupted_tokens: Tensor,
    reader: MetricReader,
    memory_budget_bytes: int | None = None,
    max_variants_per_chunk: int | None = None,
) -> Tensor:
    """``[n_layers, n_heads]``: mean over prompts of the metric with head (L, h)'s clean output
    patched into the corrupted run at every position."""
    n_keep = reader.n_keep or corrupted_tokens.shape[1]
    # causal attention: positions after the metric's position cannot influence it
    clean = clean_tokens[:, :n_keep]
    corrupted = corrupted_tokens[:, :n_keep]
    batch = corrupted.shape[0]
    n_layers, n_heads = fm.n_layers, fm.n_heads
    z_clean = run_and_cache(fm, clean, n_layers, want_z=True).z
    corr = run_and_cache(fm, corrupted, n_layers, want_z=True, want_resid_mid=True)

    variants = [(layer, head) for layer in range(n_layers) for head in range(n_heads)]
    last_only = reader.position is not None
    per_variant = bytes_per_variant(fm, batch, n_keep, 1 if last_only else n_keep,
                                    fm.W_E.element_size())
    size = variants_per_chunk(per_variant, len(variants), memory_budget_bytes,
                              corrupted.device, max_variants_per_chunk)
    # one rank update per layer for all heads at once: [H, B, T, d]
    deltas: dict[int, Tensor] = {}

    def delta(layer: int) -> Tensor:
        if layer not in deltas:
            dz = z_clean[layer] - corr.z[layer]
            deltas[layer] = torch.einsum("bthd,hdm->hbtm", dz, fm.layers[layer].W_O)
        return deltas[layer]

    results = torch.empty(len(variants), dtype=torch.float64, device=corrupted.device)
    for rows in chunks(len(variants), size):
        chunk = [variants[i] for i in rows]

        def fill(step: int, idx: range, chunk: list[tuple[int, int]] = chunk) -> Tensor:
            layer = chunk[idx.start][0]
            heads = [chunk[i][1] for i in idx]
            if heads == list(range(n_heads)):
                return corr.resid_mid[layer] + delta(layer)
            return corr.resid_mid[layer] + delta(layer)[heads]

        final = run_stacked(fm, [2 * layer + 1 for layer, _ in chunk], fill, batch, n_keep,
                            fm.W_E.dtype, corrupted.device, last_only)
        logits = fm.logits(final)
        for j, i in enumerate(rows):
            results[i] = reader(logits[j]).double().mean()
    return results.view(n_layers, n_heads).to(fm.W_E.dtype)
