"""Named prompt generators behind the ``mi_prompts`` fixture and ``make_split``.

A generator is ``fn(handle, seed, **kwargs) -> PromptSet``. ``make_split`` calls it with
``seed`` for the fit split and ``seed + HELDOUT_OFFSET`` for the held-out split. Other
modules add generators with :func:`register_generator` (IOI templates, induction pairs, ...).
"""

from __future__ import annotations

from typing import Any

from mi_assert.backends import ModelHandle, as_handle
from mi_assert.errors import MiAssertInputError, suggest

# ioi and pairs register their generators when imported
from mi_assert.prompts import (  # noqa: F401
    HELDOUT_OFFSET,
    PromptSet,
    SplitPrompts,
    ioi,
    pairs,
    repeated_tokens,
)
from mi_assert.prompts.registry import GENERATORS as _GENERATORS
from mi_assert.prompts.registry import register_generator


def available_generators() -> list[str]:
    """Names of every registered generator."""
    return sorted(_GENERATORS)


@register_generator("repeated")
def repeated(handle: ModelHandle, seed: int, n_prompts: int = 32, repeat_len: int = 20,
             **kwargs: Any) -> PromptSet:
    """BOS + random tokens repeated twice (the standard induction / previous-token prompts)."""
    repeat_len = min(repeat_len, (handle.n_ctx - 1) // 2)
    tokens = repeated_tokens(n_prompts, repeat_len, handle.d_vocab, seed, handle.bos_token_id, **kwargs)
    return PromptSet(clean=tokens, meta={"kind": "repeated", "repeat_len": repeat_len,
                                         "n_prompts": n_prompts, "seed": seed})


def make_split(model: Any, kind: str = "repeated", seed: int = 0, **kwargs: Any) -> SplitPrompts:
    """Fit and held-out prompt sets from generator ``kind`` (held-out on an unseen seed)."""
    handle = as_handle(model)
    names = available_generators()
    if kind not in _GENERATORS:
        raise MiAssertInputError(f"unknown prompt generator {kind!r}.{suggest(kind, names)} Allowed: {', '.join(names)}")
    gen = _GENERATORS[kind]
    return SplitPrompts(fit=gen(handle, seed, **kwargs),
                        heldout=gen(handle, seed + HELDOUT_OFFSET, **kwargs), seed=seed)
