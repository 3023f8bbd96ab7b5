"""Fast batched kernels behind the sweeps: stacked patching and one-pass attribution.

``fast_patching_sweep`` is what ``mi_assert.patching_sweep`` calls first; it returns None
whenever it cannot vouch for the result (unsupported backend, architecture, site or dtype), and
the generic hook-based path runs instead.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
from torch import Tensor

from mi_assert.errors import MiAssertInputError
from mi_assert.kernels.attribution import attribution_head_out_scores
from mi_assert.kernels.functional import FunctionalModel, unsupported_reason
from mi_assert.kernels.handles import (
    checked_functional,
    checked_functional_for,
    handle_support_reason,
)
from mi_assert.kernels.head_sweep import head_out_sweep
from mi_assert.kernels.metric_reader import MetricReader
from mi_assert.kernels.resid_sweep import resid_pre_sweep
from mi_assert.kernels.sae_splice import splice_unsupported_reason, spliced_next_token_ce

__all__ = ["fast_patching_sweep", "attribution_head_out", "fast_spliced_ce", "support_reason",
           "model_support_reason", "checked_functional_model",
           "PRECISIONS", "HEAD_OUT_SITES", "RESID_PRE_SITES"]

HEAD_OUT_SITES = frozenset({"head_out", "attn_head_out", "z", "hook_z", "attn.hook_z"})
RESID_PRE_SITES = frozenset({"resid_pre", "hook_resid_pre"})
#: "fp32" (exact, default), "tf32" (fp32 storage, tf32 matmuls), "bf16" (bf16 weights/activations)
PRECISIONS = ("fp32", "tf32", "bf16")

def support_reason(handle: Any) -> str | None:
    """Why ``handle`` cannot use the fast kernels (None when it can): TransformerLens handles,
    nnsight handles over a HookedTransformer or a Hugging Face model, and the bridge
    (:mod:`mi_assert.kernels.handles`)."""
    return handle_support_reason(handle)


def model_support_reason(model: Any) -> str | None:
    """Why the kernels cannot run the ``HookedTransformer`` ``model`` (None when they can)."""
    tokenizer = getattr(model, "tokenizer", None)
    if getattr(tokenizer, "padding_side", "right") == "left":
        # TL masks left padding from the tokenizer's attention mask; the kernels run unmasked
        return "the tokenizer pads on the left (the kernels do not apply TL's padding mask)"
    return unsupported_reason(model)


def checked_functional_model(model: Any, tokens: Tensor) -> FunctionalModel | None:
    """The fused weights of ``model`` when the kernels can vouch for it, else None: its
    configuration is supported (:func:`model_support_reason`) and a one-prompt probe of
    ``tokens`` reproduces its logits (cached per weight version)."""
    if model_support_reason(model) is not None:
        return None
    return checked_functional(model, tokens)


@contextlib.contextmanager
def _matmul_precision(precision: str) -> Iterator[None]:
    previous = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("high" if precision == "tf32" else "highest")
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(previous)


def _prepare(handle: Any, clean_tokens: Any, corrupted_tokens: Any, precision: str
             ) -> tuple[FunctionalModel, Tensor, Tensor] | None:
    if precision not in PRECISIONS:
        raise MiAssertInputError(f"precision={precision!r} is not one of {PRECISIONS}")
    if support_reason(handle) is not None:
        return None
    clean = handle.to_tokens(clean_tokens) if not isinstance(clean_tokens, Tensor) else clean_tokens
    corrupted = (handle.to_tokens(corrupted_tokens)
                 if not isinstance(corrupted_tokens, Tensor) else corrupted_tokens)
    clean = clean.to(handle.device)
    corrupted = corrupted.to(handle.device)
    if clean.shape != corrupted.shape or clean.dim() != 2:
        raise MiAssertInputError(
            f"clean and corrupted tokens must both be [batch, pos] of the same shape; got "
            f"{tuple(clean.shape)} and {tuple(corrupted.shape)}")
    if corrupted.shape[1] > handle.n_ctx:
        raise MiAssertInputError(f"{corrupted.shape[1]} tokens exceed the model's n_ctx={handle.n_ctx}")
    fm = checked_functional_for(handle, corrupted)
    if fm is None:
        return None
    if precision == "bf16":
        fm = fm.cast(torch.bfloat16)
    return fm, clean, corrupted


def fast_patching_sweep(
    handle: Any,
    clean_tokens: Any,
    corrupted_tokens: Any,
    metric: Any,
    site: str,
    *,
    precision: str = "fp32",
    memory_budget_bytes: int | None = None,
    max_variants_per_chunk: int | None = None,
) -> Tensor | None:
    """A patching sweep in TransformerLens ``get_act_patch_*`` layout and units, or None.

    ``site="head_out"``: ``[n_layers, n_heads]``, clean ``z`` of one head patched into the
    corrupted run at all positions (``get_act_patch_attn_head_out_all_pos``).
    ``site="resid_pre"``: ``[n_layers, pos]`` (``get_act_patch_resid_pre``). Entries are the mean
    over prompts of ``metric``. Variants are stacked into the batch, chunked to fit memory
    (``memory_budget_bytes`` / ``max_variants_per_chunk`` override the automatic choice).
    ``precision`` "tf32"/"bf16" trade exactness for speed (errors in docs/benchmarks.md).
    Returns None when the handle, site or dtype is not supported.
    """
    if site in HEAD_OUT_SITES:
        sweep = head_out_sweep
    elif site in RESID_PRE_SITES:
        sweep = resid_pre_sweep
    else:
        return None
    prepared = _prepare(handle, clean_tokens, corrupted_tokens, precision)
    if prepared is None:
        return None
    fm, clean, corrupted = prepared
    reader = MetricReader(metric, corrupted.shape[1])
    with torch.no_grad(), _matmul_precision(precision):
        out = sweep(fm, clean, corrupted, reader, memory_budget_bytes, max_variants_per_chunk)
    return out.to(handle.dtype)


def attribution_head_out(
    handle: Any, clean_tokens: Any, corrupted_tokens: Any, metric: Any, *, precision: str = "fp32"
) -> Tensor:
    """Attribution-patching scores ``[n_layers, n_heads]`` for every head's output (all positions).

    The linear estimate of (patched - corrupted mean metric) of ``fast_patching_sweep(...,
    "head_out")``: 2 forwards + 1 input-only backward. Raises ``MiAssertInputError`` when the
    handle is not supported (it has no slow twin to fall back to here).
    """
    prepared = _prepare(handle, clean_tokens, corrupted_tokens, precision)
    if prepared is None:
        raise MiAssertInputError(
            f"attribution_head_out needs a model the kernels support: "
            f"{support_reason(handle) or 'the functional forward did not reproduce its logits'}")
    fm, clean, corrupted = prepared
    reader = MetricReader(metric, corrupted.shape[1])
    with _matmul_precision(precision):
        out = attribution_head_out_scores(fm, clean, corrupted, reader)
    return out.to(handle.dtype)


def fast_spliced_ce(handle: Any, tokens: Tensor, hook: str, edit: Any) -> Tensor | None:
    """Per-token next-token CE ``[k, B, T - 1]`` with ``hook`` replaced by ``edit``'s ``k``
    stacked variants (``mi_assert.kernels.sae_splice``), or None when the handle, hook or
    dtype is not supported (the caller then runs the hook-based path)."""
    if support_reason(handle) is not None:
        return None
    parsed = handle.parse_hook(hook)
    tokens = tokens.to(handle.device)
    if parsed.layer is None or tokens.dim() != 2 or tokens.shape[1] > handle.n_ctx:
        return None
    fm = checked_functional_for(handle, tokens)
    if fm is None or splice_unsupported_reason(fm, parsed.kind) is not None:
        return None
    return spliced_next_token_ce(fm, tokens, parsed.layer, parsed.kind, edit)
