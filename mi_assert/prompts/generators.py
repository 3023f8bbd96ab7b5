"""Named prompt generators behind the ``mi_prompts`` fixture and ``make_split``.

A generator is ``fn(handle, seed, **kwargs) -> PromptSet``. ``make_split`` calls it with
``seed`` for the fit split and ``seed + HELDOUT_OFFSET`` for the held-out split. Other
modules add generators with :func:`register_generator` (IOI templates, induction pairs, ...).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mi_assert.backends import ModelHandle, as_handle
from mi_assert.errors import MiAssertInputError, suggest
from mi_assert.prompts import HELDOUT_OFFSET, PromptSet, SplitPrompts, repeated_tokens

Generator = Callable[..., PromptSet]
_GENERATORS: dict[str, Generator] = {}
#: modules that register more generators on import (kept lazy)
_PROVIDERS: tuple[str, ...] = ("mi_assert.prompts.ioi", "mi_assert.prompts.pairs")


def register_generator(name: str) -> Callable[[Generator], Generator]:
    def deco(fn: Generator) -> Generator:
        _GENERATORS[name] = fn
        return fn

    return deco


def available_generators() -> list[str]:
    import importlib

    for module in _PROVIDERS:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
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
