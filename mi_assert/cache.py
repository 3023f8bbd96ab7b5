"""A lazy activation cache: runs the model only for the hooks a test actually reads."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from torch import Tensor

from mi_assert.backends.base import ModelHandle


class LazyActivationCache(Mapping[str, Tensor]):
    """``cache[hook]`` runs one forward pass for the hooks asked so far that are missing.

    ``prefetch`` names hooks to compute together on first access (from the ``mi_hooks``
    marker), so a test reading several hooks costs one forward pass. That pass stops after the
    deepest hook asked and computes no logits
    (:meth:`~mi_assert.backends.base.ModelHandle.capture_activations`); :attr:`logits` runs
    the full model on first read.
    """

    def __init__(self, handle: ModelHandle, tokens: Any, prefetch: Iterable[str] = ()) -> None:
        self.handle = handle
        self.tokens = handle.to_tokens(tokens)
        self._prefetch = [self.hook_name(h) for h in prefetch]
        self._store: dict[str, Tensor] = {}
        self.n_forward_passes = 0
        self._logits: Tensor | None = None

    @property
    def logits(self) -> Tensor:
        """The model's logits on :attr:`tokens` (one full forward pass, on first read)."""
        if self._logits is None:
            self._logits = self.handle.forward(self.tokens)
            self.n_forward_passes += 1
        return self._logits

    def hook_name(self, key: Any) -> str:
        """A canonical hook name, or a component name (``"resid_pre1"``, ``"mlp0"``,
        ``"attn1"``, ``"L1H2"`` → that head's ``hook_z``) resolved to its hook."""
        if isinstance(key, str) and (key.startswith(("blocks.", "hook_", "ln_final"))):
            return self.handle.parse_hook(key).name
        from mi_assert.causal.components import parse_component

        return parse_component(self.handle, key).hook

    def __getitem__(self, hook: str) -> Tensor:
        name = self.hook_name(hook)
        if name not in self._store:
            wanted = [h for h in dict.fromkeys([*self._prefetch, name]) if h not in self._store]
            acts = self.handle.capture_activations(self.tokens, wanted)
            self.n_forward_passes += 1
            self._store.update(acts)
        return self._store[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._store)

    def __len__(self) -> int:
        return len(self._store)

    def __contains__(self, hook: object) -> bool:
        try:
            return self.hook_name(hook) in self._store
        except (KeyError, ValueError):
            return False

    def __repr__(self) -> str:
        return f"<LazyActivationCache cached={sorted(self._store)} forward_passes={self.n_forward_passes}>"
