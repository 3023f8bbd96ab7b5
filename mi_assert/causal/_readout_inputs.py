"""Input checks shared by the readout and weight claims (attribution, logit lens, probes,
composition).

Private to those modules: turns what a user passes (token batches, PromptSets, answer ids, head
names, positions, the shared claim options) into validated values, raising :class:`MiAssertInputError` that
names what is wrong and what is allowed. Component names are parsed by
:mod:`mi_assert.causal.components` (one parser for the whole package); this module only maps
them onto the residual-stream writers that direct logit attribution understands.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from mi_assert.backends.base import ModelHandle
from mi_assert.causal.components import parse_component
from mi_assert.errors import MiAssertInputError
from mi_assert.stats.claims import check_threshold
from mi_assert.stats.options import ClaimOptions, claim_options

#: direct-logit-attribution kinds: the additive writers into the residual stream
WRITER_KINDS = ("head", "attn", "mlp", "embed", "pos_embed")


@dataclass(frozen=True)
class Writer:
    """One additive writer into the residual stream.

    ``kind`` is ``head`` (one head's ``z @ W_O``, without the layer's ``b_O``), ``attn`` (a
    layer's whole attention output, ``b_O`` included), ``mlp``, ``embed`` or ``pos_embed``.
    """

    kind: str
    layer: int | None = None
    head: int | None = None

    @property
    def label(self) -> str:
        if self.kind == "head":
            return f"L{self.layer}H{self.head}"
        if self.kind in ("attn", "mlp"):
            return f"{self.kind}{self.layer}"
        return self.kind


def parse_writer(handle: ModelHandle, spec: Any) -> Writer:
    """A head, ``"attnL"``, ``"mlpL"``, ``"embed"`` or ``"pos_embed"`` → :class:`Writer`."""
    if isinstance(spec, Writer):
        return spec
    comp = parse_component(handle, spec)
    hook = comp.hook
    if comp.head is not None and hook.endswith("attn.hook_z"):
        return Writer("head", comp.layer, comp.head)
    if hook.endswith("hook_attn_out"):
        return Writer("attn", comp.layer)
    if hook.endswith("hook_mlp_out"):
        return Writer("mlp", comp.layer)
    if hook == "hook_embed":
        return Writer("embed")
    if hook == "hook_pos_embed":
        return Writer("pos_embed")
    raise MiAssertInputError(
        f"component {spec!r} ({hook}) does not write into the residual stream by itself, so it "
        "has no direct logit attribution; allowed: heads ((l, h), 'L1H3', '1.3'), 'attnL', "
        "'mlpL', 'embed', 'pos_embed'"
    )


def parse_writers(handle: ModelHandle, spec: Any) -> list[Writer]:
    """One writer or a list of them (a bare ``(l, h)`` int pair is one head)."""
    single = isinstance(spec, (str, Writer)) or (
        isinstance(spec, tuple) and len(spec) == 2
        and all(isinstance(x, int) and not isinstance(x, bool) for x in spec)
    )
    specs = [spec] if single else spec
    if not isinstance(specs, (list, tuple)):
        raise MiAssertInputError(
            f"components must be one component or a list of them; got {type(spec).__name__}"
        )
    if not specs:
        raise MiAssertInputError("no components given: name at least one, e.g. 'L1H0' or 'mlp3'")
    writers = [parse_writer(handle, s) for s in specs]
    labels = [w.label for w in writers]
    dupes = sorted({lab for lab in labels if labels.count(lab) > 1})
    if dupes:
        raise MiAssertInputError(f"components listed twice: {', '.join(dupes)}")
    overlap = [w.label for w in writers if w.kind == "head"
               and any(o.kind == "attn" and o.layer == w.layer for o in writers)]
    if overlap:
        raise MiAssertInputError(
            f"heads {', '.join(overlap)} are already inside the attention layer listed with them; "
            "list either the layer ('attnL') or its heads, not both"
        )
    return writers


def parse_head(handle: ModelHandle, spec: Any, what: str = "head") -> tuple[int, int]:
    """``(l, h)``, ``"L1H3"`` or ``"1.3"`` → a range-checked ``(layer, head)``."""
    comp = parse_component(handle, spec)
    if comp.head is None or not comp.hook.endswith("attn.hook_z") or comp.layer is None:
        raise MiAssertInputError(
            f"{what} {spec!r} is not an attention head: use (layer, head), 'L1H3' or '1.3'"
        )
    return comp.layer, comp.head


def prompt_tokens(handle: ModelHandle, prompts: Any) -> tuple[Tensor, Any]:
    """Token batch ``[batch, pos]`` from tokens / strings / a PromptSet, and the PromptSet (or None)."""
    from mi_assert.prompts import PromptSet

    if prompts is None:
        raise MiAssertInputError("prompts is None: pass token ids [batch, pos], strings or a PromptSet")
    if isinstance(prompts, PromptSet):
        return handle.to_tokens(prompts.clean), prompts
    return handle.to_tokens(prompts), None


def parse_answer_ids(handle: ModelHandle, ids: Any, batch: int, what: str) -> Tensor:
    """Answer token ids as a LongTensor ``[batch]`` (one int or single-token string broadcasts)."""
    if ids is None:
        raise MiAssertInputError(f"{what} is missing: pass token ids (an int, a list or a tensor [batch])")
    if isinstance(ids, str) or (isinstance(ids, (list, tuple)) and ids and isinstance(ids[0], str)):
        ids = _encode_single_tokens(handle, [ids] if isinstance(ids, str) else list(ids), what)
    out = torch.as_tensor(ids)
    if out.is_floating_point() or out.dtype == torch.bool:
        raise MiAssertInputError(f"{what} must be integer token ids; got dtype {out.dtype}")
    out = out.long().reshape(-1)
    if out.numel() == 1:
        out = out.expand(batch).clone()
    if out.numel() != batch:
        raise MiAssertInputError(
            f"{what} has {out.numel()} ids but there are {batch} prompts: pass one id per prompt "
            "or a single id for all"
        )
    lo, hi = int(out.min()), int(out.max())
    if lo < 0 or hi >= handle.d_vocab:
        raise MiAssertInputError(
            f"{what} must lie in 0..{handle.d_vocab - 1} (d_vocab={handle.d_vocab}); got {lo}..{hi}"
        )
    return out.to(handle.device)


def _encode_single_tokens(handle: ModelHandle, words: list[str], what: str) -> list[int]:
    tok = handle.tokenizer
    if tok is None:
        raise MiAssertInputError(f"{what}: model {handle.spec!r} has no tokenizer; pass token ids")
    ids: list[int] = []
    for word in words:
        enc = tok(word, add_special_tokens=False)["input_ids"]
        if len(enc) != 1:
            raise MiAssertInputError(
                f"{what}: {word!r} is {len(enc)} tokens {enc}; answers must be single tokens "
                "(a leading space often matters)"
            )
        ids.append(int(enc[0]))
    return ids


def check_position(position: Any, n_pos: int) -> int:
    """One sequence position (negative counts from the end) → a non-negative index."""
    if isinstance(position, bool) or not isinstance(position, (int, np.integer)):
        raise MiAssertInputError(f"position must be an int (e.g. -1 for the last token); got {position!r}")
    if not -n_pos <= position < n_pos:
        raise MiAssertInputError(
            f"position {position} is out of range for prompts of {n_pos} tokens "
            f"(allowed {-n_pos}..{n_pos - 1})"
        )
    return int(position) % n_pos


def check_threshold_option(name: str, value: Any, alternative: str,
                           value_range: tuple[float, float] | None, metric: str) -> float:
    """A threshold option checked before any measuring (the engine's rule, named)."""
    try:
        return check_threshold(value, alternative, value_range, metric)  # type: ignore[arg-type]
    except MiAssertInputError as exc:
        raise MiAssertInputError(f"{name}={value!r}: {exc}") from None


def resolve_seeds(seeds: Any, seed: Any) -> tuple[int, ...]:
    """``seeds=`` (default ``(0,)``) or its alias ``seed=``, not both; distinct ints."""
    if seed is not None and seeds is not None:
        raise MiAssertInputError(f"pass seeds= or its alias seed=, not both; got seeds={seeds!r}, "
                                 f"seed={seed!r}")
    chosen = seed if seed is not None else (seeds if seeds is not None else (0,))
    return claim_options(seeds=chosen).seeds


def readout_options(*, seeds: Any, seed: Any, quorum: Any, alpha: Any, n_resamples: Any,
                    min_prompts: Any) -> ClaimOptions:
    """The shared options (:func:`~mi_assert.stats.options.claim_options`), ``seed=`` an alias
    of ``seeds=``."""
    return claim_options(seeds=resolve_seeds(seeds, seed), quorum=quorum, alpha=alpha,
                         n_resamples=n_resamples, min_prompts=min_prompts)


def model_seed_of(handle: ModelHandle) -> int | None:
    """The zoo model's training seed (the rows' model seed), or None."""
    meta = getattr(handle, "meta", None) or {}
    value = meta.get("model_seed")
    return None if value is None else int(value)


def prompt_units(tokens: Tensor) -> list[tuple[int, ...]]:
    """One unit id per prompt (its token row): copies of a prompt are one unit, not several."""
    return [tuple(row) for row in tokens.detach().cpu().tolist()]
