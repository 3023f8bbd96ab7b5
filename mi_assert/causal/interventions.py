"""Edit functions for patching and ablating components (backend-agnostic, via run_with_edits)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

import torch
from torch import Tensor

from mi_assert.backends.base import EditFn, ModelHandle
from mi_assert.causal.components import Component
from mi_assert.errors import MiAssertInputError

AblationMethod = Literal["mean", "zero", "resample", "noise"]
ABLATION_METHODS: tuple[str, ...] = ("mean", "zero", "resample", "noise")


def _slot(comp: Component, positions: Sequence[int] | None) -> tuple[slice | Tensor, int | slice]:
    pos: slice | Tensor = slice(None) if positions is None else torch.as_tensor(list(positions))
    return pos, (comp.head if comp.head is not None else slice(None))


def replace_edit(comp: Component, source: Tensor, positions: Sequence[int] | None = None) -> EditFn:
    """Edit that writes ``source`` (same shape as the activation, or broadcastable to it) into
    the component's slot: all of a site, or one head of a per-head hook, at ``positions``."""

    def edit(act: Tensor) -> Tensor:
        src = source.to(act.device, act.dtype)
        src = torch.broadcast_to(src, act.shape) if src.shape != act.shape else src
        out = act.clone()
        pos, head = _slot(comp, positions)
        if isinstance(pos, Tensor):
            pos = pos.to(act.device)
        if comp.head is not None:
            out[:, pos, head] = src[:, pos, head]
        else:
            out[:, pos] = src[:, pos]
        return out

    return edit


def edits_for(components: Sequence[Component], sources: Mapping[Component, Tensor],
              positions: Sequence[int] | None = None) -> dict[str, list[EditFn]]:
    """Group per-component replace edits by hook (several heads of one hook are all applied)."""
    edits: dict[str, list[EditFn]] = {}
    for comp in components:
        edits.setdefault(comp.hook, []).append(replace_edit(comp, sources[comp], positions))
    return edits


def hooks_of(components: Sequence[Component]) -> list[str]:
    return sorted({c.hook for c in components})


def patched_logits(handle: ModelHandle, tokens: Tensor, components: Sequence[Component],
                   source_cache: Mapping[str, Tensor], positions: Sequence[int] | None = None,
                   capture: Sequence[str] = ()) -> tuple[Tensor, dict[str, Tensor]]:
    """Run ``tokens`` with each component's activation taken from ``source_cache``."""
    sources = {c: source_cache[c.hook] for c in components}
    return handle.run_with_edits(tokens, edits_for(components, sources, positions), capture)


def ablation_sources(
    handle: ModelHandle,
    tokens: Tensor,
    components: Sequence[Component],
    method: str,
    reference: Tensor | None = None,
    seed: int = 0,
    noise_scale: float = 1.0,
) -> dict[Component, Tensor]:
    """Replacement activations for ablating ``components`` on ``tokens``.

    * ``mean``: the mean over ``reference`` prompts (default: ``tokens`` themselves), per
      position (and per head), i.e. the activation averaged over the batch axis;
    * ``zero``: zeros (a 0-dim tensor that broadcasts into the slot: no forward pass needed);
    * ``resample``: the activation of another prompt of ``reference`` (default ``tokens``),
      chosen by a seeded permutation with no fixed points when the batch has >= 2 prompts;
    * ``noise``: the activation plus Gaussian noise with std ``noise_scale`` × the activation's
      std over the batch and positions (per component slot), seeded.
    """
    if method not in ABLATION_METHODS:
        raise MiAssertInputError(f"ablation method {method!r} unknown; allowed: {', '.join(ABLATION_METHODS)}")
    ref = tokens if reference is None else reference
    if ref.shape[1] != tokens.shape[1]:
        raise MiAssertInputError(
            f"reference prompts have {ref.shape[1]} tokens but the prompts have {tokens.shape[1]}; "
            "ablation values are taken per position, so they must have the same length"
        )
    hooks = hooks_of(components)
    need_ref = method in ("mean", "resample")
    need_own = method == "noise"
    _, own = handle.run_with_cache(tokens, hooks) if need_own else (None, {})
    _, ref_cache = handle.run_with_cache(ref, hooks) if need_ref else (None, {})
    gen = torch.Generator().manual_seed(int(seed))
    out: dict[Component, Tensor] = {}
    batch = tokens.shape[0]
    for comp in components:
        if method == "mean":
            out[comp] = ref_cache[comp.hook].mean(dim=0, keepdim=True)
        elif method == "zero":
            out[comp] = torch.zeros(())
        elif method == "resample":
            acts = ref_cache[comp.hook]
            idx = _derangement(acts.shape[0], batch, gen)
            out[comp] = acts[idx.to(acts.device)]
        else:
            act = own[comp.hook]
            sl = act[:, :, comp.head] if comp.head is not None else act
            std = float(sl.float().std()) if sl.numel() > 1 else 0.0
            noise = torch.randn(act.shape, generator=gen).to(act.device, act.dtype)
            out[comp] = act + noise_scale * std * noise
    return out


def _derangement(n_ref: int, batch: int, gen: torch.Generator) -> Tensor:
    """For prompt i a reference index != i when possible (seeded)."""
    if n_ref == batch and batch >= 2:
        perm = torch.randperm(batch, generator=gen)
        shift = int(torch.randint(1, batch, (1,), generator=gen))
        # a cyclic shift in permuted order has no fixed points
        idx = torch.empty(batch, dtype=torch.long)
        idx[perm] = perm.roll(shift)
        return idx
    return torch.randint(0, n_ref, (batch,), generator=gen)
