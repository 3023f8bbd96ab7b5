"""Run several edited variants of one batch as a single forward pass.

Activation patching evaluates many variants (one per patched component) of the same prompts.
Stacking the V variants along the batch axis turns V forwards into one, on every backend,
because each variant's edits only touch its own slice of the stacked batch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import cast

import torch
from torch import Tensor

from mi_assert.backends.base import EditFn, ModelHandle
from mi_assert.errors import MiAssertInputError


def run_stacked_variants(
    handle: ModelHandle,
    tokens: Tensor,
    variants: Sequence[Mapping[str, EditFn | Sequence[EditFn]]],
    capture: Sequence[str] = (),
) -> Tensor:
    """Logits ``[V, batch, pos, d_vocab]`` of ``tokens`` under each variant's edits.

    ``variants[v]`` maps canonical hook names to edit functions; each edit function sees the
    activation of its own variant only (``[batch, ...]``, canonical shape), exactly as in
    ``handle.run_with_edits(tokens, variants[v])``. ``capture`` is not supported yet (pass ()).
    """
    if not variants:
        raise MiAssertInputError("run_stacked_variants needs at least one variant")
    if capture:
        raise MiAssertInputError("run_stacked_variants does not capture activations; pass capture=()")
    tokens = handle.to_tokens(tokens)
    batch = tokens.shape[0]
    stacked = tokens.repeat(len(variants), 1)
    per_hook: dict[str, dict[int, list[EditFn]]] = {}
    for v, edits in enumerate(variants):
        for name, fns in edits.items():
            key = handle.parse_hook(name).name
            fn_list: list[EditFn] = list(fns) if isinstance(fns, (list, tuple)) else [cast(EditFn, fns)]
            per_hook.setdefault(key, {}).setdefault(v, []).extend(fn_list)
    merged = {name: [_sliced(by_variant, batch)] for name, by_variant in per_hook.items()}
    with torch.no_grad():
        logits, _ = handle._run_eval_mode(stacked, merged, ())
    return logits.reshape(len(variants), batch, *logits.shape[1:])


def _sliced(by_variant: dict[int, list[EditFn]], batch: int) -> EditFn:
    """One edit over the stacked batch: each variant's functions on its own slice (one copy)."""

    def edit(act: Tensor) -> Tensor:
        out = act.clone()
        for v, fns in by_variant.items():
            part = act[v * batch:(v + 1) * batch]
            for fn in fns:
                part = fn(part)
            out[v * batch:(v + 1) * batch] = part
        return out

    return edit
