"""The registry of named prompt generators (``fn(handle, seed, **kwargs) -> PromptSet``).

Modules that define generators register them here with :func:`register_generator`;
:mod:`mi_assert.prompts.generators` imports every such module, so the registry is complete
wherever generators are looked up.
"""

from __future__ import annotations

from collections.abc import Callable

from mi_assert.prompts import PromptSet

Generator = Callable[..., PromptSet]
GENERATORS: dict[str, Generator] = {}


def register_generator(name: str) -> Callable[[Generator], Generator]:
    def deco(fn: Generator) -> Generator:
        GENERATORS[name] = fn
        return fn

    return deco
