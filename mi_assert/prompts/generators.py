"""Named prompt generators behind the ``mi_prompts`` fixture and ``make_split``.

A generator is ``fn(handle, seed, **kwargs) -> PromptSet``. ``make_split`` calls it with
``seed`` for the fit split and ``seed + HELDOUT_OFFSET`` for the held-out split. Other
modules add generators with :func:`register_generator` (IOI templates, induction pairs, ...).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
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
    """BOS + random tokens repeated twice (the standard induction / previous-token prompts).

    Tokens come from ``handle.content_token_ids()`` unless ``vocab=`` is given: ids valid as
    input and output, never a special id (PAD would be a content token otherwise).
    """
    repeat_len = min(repeat_len, (handle.n_ctx - 1) // 2)
    kwargs.setdefault("vocab", handle.content_token_ids())
    tokens = repeated_tokens(n_prompts, repeat_len, handle.d_vocab, seed, handle.bos_token_id, **kwargs)
    return PromptSet(clean=tokens, meta={"kind": "repeated", "repeat_len": repeat_len,
                                         "n_prompts": n_prompts, "seed": seed})


#: generators that pass their extra keyword options on to another function: (that function,
#: how many of its leading parameters the generator fills itself)
OPTIONS_PASSED_TO: dict[str, tuple[Callable[..., Any], int]] = {"repeated": (repeated_tokens, 5)}


def check_generator_options(kind: str, gen: Callable[..., Any], kwargs: Mapping[str, Any]) -> None:
    """Unknown generator options are a clear error (not a TypeError from inside the generator)."""
    params = inspect.signature(gen).parameters
    allowed = [n for n, p in params.items()
               if p.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)][2:]
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        passed_to = OPTIONS_PASSED_TO.get(kind)
        if passed_to is None:
            return
        target, filled = passed_to
        allowed += [n for n in list(inspect.signature(target).parameters)[filled:] if n not in allowed]
    for name in kwargs:
        if name not in allowed:
            raise MiAssertInputError(
                f"unknown {kind} option {name!r}.{suggest(name, allowed)} "
                f"Allowed: {', '.join(allowed) or 'none'}")


def make_split(model: Any, kind: str = "repeated", seed: int = 0, **kwargs: Any) -> SplitPrompts:
    """Fit and held-out prompt sets from generator ``kind`` (held-out on an unseen seed)."""
    handle = as_handle(model)
    names = available_generators()
    if kind not in _GENERATORS:
        raise MiAssertInputError(f"unknown prompt generator {kind!r}.{suggest(kind, names)} Allowed: {', '.join(names)}")
    gen = _GENERATORS[kind]
    check_generator_options(kind, gen, kwargs)
    return SplitPrompts(fit=gen(handle, seed, **kwargs),
                        heldout=gen(handle, seed + HELDOUT_OFFSET, **kwargs), seed=seed)
