"""Lazy public names for a package (PEP 562): imported on first use, so importing the package
(pytest loading the plugin, say) does not import torch, TransformerLens or SAELens."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any


def lazy_exports(package: str, names: Mapping[str, str], submodules: Iterable[str] = ()
                 ) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package``: ``names`` maps a public name to the module
    that defines it (absolute, or relative to ``package`` with a leading dot); ``submodules``
    are reachable as attributes. A loaded value is cached in the package's namespace."""
    subs = tuple(submodules)
    namespace = vars(importlib.import_module(package))

    def __getattr__(name: str) -> Any:
        if name in subs:
            value: Any = importlib.import_module(f"{package}.{name}")
        elif name in names:
            module = names[name]
            value = getattr(importlib.import_module(package + module if module.startswith(".")
                                                    else module), name)
        else:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(names) | set(subs) | {k for k in namespace if not k.startswith("_")})

    return __getattr__, __dir__
