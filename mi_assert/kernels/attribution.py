"""Attribution patching for every head's output in one clean forward + one corrupted
forward and backward (Nanda 2023; AtP, Kramar et al. 2024).

score[L, h] = sum over prompts, positions and d_head of
``(z_clean - z_corr)[b, t, h, :] . d(mean_b metric)/d z_corr[b, t, h, :]``:
the first-order estimate of (patched - corrupted) for ``get_act_patch_attn_head_out_all_pos``.
Only the gradients with respect to ``z`` are computed (no weight gradients): the backward pass
costs about one forward.
"""

from __future__ import annotations

import torch
from torch import Tensor

from mi_assert.kernels.functional import FunctionalModel, run_and_cache
from mi_assert.kernels.metric_reader import MetricReader


def attribution_head_out_scores(
    fm: FunctionalModel, clean_tokens: Tensor, corrupted_tokens: Tensor, reader: MetricReader
) -> Tensor:
    """``[n_layers, n_heads]`` attribution scores (see the module docstring)."""
    n_keep = reader.n_keep or corrupted_tokens.shape[1]
    clean = clean_tokens[:, :n_keep]
    corrupted = corrupted_tokens[:, :n_keep]
    with torch.no_grad():
        z_clean = run_and_cache(fm, clean, fm.n_layers, want_z=True).z
    with torch.enable_grad():
        # the embedding is the graph's root: gradients then reach every z, and autograd's engine
        # evaluates only the part of the backward graph between the metric and the z's
        x = fm.embed(corrupted).detach().requires_grad_(True)
        zs: list[Tensor] = []
        for layer in range(fm.n_layers):
            q, k, v = fm.qkv(layer, x)
            last = layer == fm.n_layers - 1 and reader.position is not None
            # parallel-block models: the MLP reads resid_pre, not resid_pre + attention
            if last:
                z = fm.attend(q, k, v, causal=True)
                zs.append(z)
                x_last = x[:, -1] + fm.attn_out(layer, z[:, -1:])[:, 0]
                if fm.has_mlp:
                    x_last = x_last + fm.mlp_out(layer, x[:, -1] if fm.parallel else x_last)
                x = x_last
            else:
                z = fm.attend(q, k, v, causal=True)
                zs.append(z)
                mlp_in = x
                x = x + fm.attn_out(layer, z)
                if fm.has_mlp:
                    x = x + fm.mlp_out(layer, mlp_in if fm.parallel else x)
        metric = reader(fm.logits(x)).mean()
        grads = torch.autograd.grad(metric, zs)
    scores = [((zc - z.detach()) * g).sum(dim=(0, 1, 3)) for zc, z, g in zip(z_clean, zs, grads, strict=True)]
    return torch.stack(scores)
