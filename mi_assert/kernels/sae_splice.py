"""Per-token next-token cross-entropy with a hook's activation replaced: the CE-loss splice.

CE loss recovered compares the model clean, with the SAE's reconstruction spliced in at one hook
and with that hook zero-ablated. The hook-based path (``mi_assert.sae.metrics``) runs the batch
stacked three times through the whole model and materialises ``[3B, T, d_vocab]`` logits. Here,
on a supported TransformerLens model (``mi_assert.kernels.functional``), the work is what the
three numbers need and no more:

* the layers before the hook run once: the three copies are identical there;
* the variants (``edit`` returns them stacked) run from the hook to the end as one batch;
* the cross-entropy is computed chunk by chunk from the final residual (chunk logits as one GEMM
  with the bias in its epilogue, then ``F.cross_entropy``: one fused log-softmax pass), so the
  full logits never exist, and the last position, which predicts nothing, is not unembedded;
* layer norms run as ``F.layer_norm`` and a tanh GELU rides in the MLP GEMM's epilogue
  (``FunctionalModel.fused``) instead of TL's chain of elementwise ops.

On an H100 at GPT-2-small shape this path runs at about 0.8 of the fp32 matmul rate, 1.9x faster
than the hook-based path (docs/benchmarks.md, "SAE CE-loss splice on the GPU").
The result equals the hook-based path's to float32 rounding (tests/kernels/test_sae_splice.py).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from mi_assert.kernels.chunking import available_bytes, chunks
from mi_assert.kernels.functional import FunctionalModel

#: hook kinds the splice can replace (the residual stream and the two sub-layer outputs)
SPLICE_KINDS = frozenset({"hook_resid_pre", "hook_resid_mid", "hook_resid_post",
                          "hook_attn_out", "hook_mlp_out"})


def splice_unsupported_reason(fm: FunctionalModel, kind: str) -> str | None:
    """Why the splice cannot replace hooks of ``kind`` on ``fm`` (None when it can)."""
    if kind not in SPLICE_KINDS:
        return f"hook kind {kind!r} (the splice replaces {', '.join(sorted(SPLICE_KINDS))})"
    if not fm.has_mlp and kind in ("hook_resid_mid", "hook_mlp_out"):
        return f"{kind} on an attention-only model"
    if fm.parallel and kind == "hook_resid_mid":
        return "hook_resid_mid on a parallel attention + MLP model (it has no resid_mid)"
    return None


#: logits (and their log-softmax) of one CE chunk stay under this many bytes
CE_CHUNK_BYTES = 2 * 1024**3


def _ce_rows_per_chunk(fm: FunctionalModel, n_rows: int, device: torch.device,
                       budget_bytes: int | None) -> int:
    """Rows of logits computed at once: two ``d_vocab`` buffers per row within the budget (a
    quarter of what the device has free, at most ``CE_CHUNK_BYTES``)."""
    budget = budget_bytes if budget_bytes is not None else min(available_bytes(device) // 4,
                                                                CE_CHUNK_BYTES)
    per_row = 2 * fm.d_vocab * fm.W_U.element_size()
    return max(1, min(n_rows, budget // per_row))


def next_token_ce(fm: FunctionalModel, final_resid: Tensor, tokens: Tensor,
                  budget_bytes: int | None = None) -> Tensor:
    """Per-token CE ``[N, T - 1]`` from the final residual ``[N, T, d_model]`` (``tokens``
    ``[N, T]``): position t predicts token t + 1. Chunked over rows; float32 log-softmax."""
    n, t, d = final_resid.shape
    rows = final_resid[:, :-1].reshape(-1, d)
    targets = tokens[:, 1:].reshape(-1).to(rows.device)
    out = torch.empty(rows.shape[0], dtype=torch.float32, device=rows.device)
    size = _ce_rows_per_chunk(fm, rows.shape[0], rows.device, budget_bytes)
    for chunk in chunks(rows.shape[0], size):
        sl = slice(chunk.start, chunk.stop)
        logits = torch.addmm(fm.b_U, fm.norm(rows[sl], fm.ln_final), fm.W_U)
        out[sl] = F.cross_entropy(logits.float(), targets[sl], reduction="none")
    return out.view(n, t - 1)


def _mlp_residual(fm: FunctionalModel, layer: int, x: Tensor) -> Tensor:
    return x + fm.mlp_out(layer, x) if fm.has_mlp else x


@torch.no_grad()
def spliced_next_token_ce(
    fm: FunctionalModel,
    tokens: Tensor,
    layer: int,
    kind: str,
    edit: Callable[[Tensor], Tensor],
    *,
    fused: bool = True,
    ce_budget_bytes: int | None = None,
) -> Tensor:
    """Per-token next-token CE ``[k, B, T - 1]`` of ``k`` variants of one batch.

    ``edit`` receives the clean activation at ``blocks.{layer}.{kind}`` (``[B, T, d_model]``)
    and returns the ``k`` replacements stacked along the batch (``[k * B, T, d_model]``, e.g.
    clean | SAE reconstruction | zeros). Everything before the hook runs once on ``tokens``.
    ``fused=False`` keeps TransformerLens's op order (see ``FunctionalModel.fused``).
    """
    reason = splice_unsupported_reason(fm, kind)
    if reason is not None:
        raise ValueError(f"the CE splice does not support {reason}")
    fm = dataclasses.replace(fm, fused=fused)
    b = tokens.shape[0]
    x = fm.embed(tokens)
    for earlier in range(layer):
        x = fm.block(earlier, x)

    def stacked(act: Tensor) -> tuple[Tensor, int]:
        variants = edit(act)
        if variants.shape[1:] != act.shape[1:] or variants.shape[0] % b:
            raise ValueError(f"edit returned shape {tuple(variants.shape)}; expected [k * {b}, "
                             f"{', '.join(map(str, act.shape[1:]))}]")
        return variants, variants.shape[0] // b

    if kind == "hook_resid_pre":
        x, k = stacked(x)
        x = fm.block(layer, x)
    elif kind == "hook_resid_post":
        x, k = stacked(fm.block(layer, x))
    elif fm.parallel:  # attention and MLP both read resid_pre; TL adds attention first
        attn, mlp = fm.attn_block_out(layer, x), fm.mlp_out(layer, x)
        if kind == "hook_attn_out":
            replaced, k = stacked(attn)
            x = x.repeat(k, 1, 1) + replaced + mlp.repeat(k, 1, 1)
        else:  # hook_mlp_out
            replaced, k = stacked(mlp)
            x = (x + attn).repeat(k, 1, 1) + replaced
    elif kind == "hook_attn_out":
        replaced, k = stacked(fm.attn_block_out(layer, x))
        x = _mlp_residual(fm, layer, x.repeat(k, 1, 1) + replaced)
    else:
        x = x + fm.attn_block_out(layer, x)
        if kind == "hook_resid_mid":
            x, k = stacked(x)
            x = _mlp_residual(fm, layer, x)
        else:  # hook_mlp_out
            replaced, k = stacked(fm.mlp_out(layer, x))
            x = x.repeat(k, 1, 1) + replaced
    for later in range(layer + 1, fm.n_layers):
        x = fm.block(later, x)
    ce = next_token_ce(fm, x, tokens.repeat(k, 1), ce_budget_bytes)
    return ce.view(k, b, -1)
