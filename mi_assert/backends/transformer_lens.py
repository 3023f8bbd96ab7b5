"""Backend over a TransformerLens ``HookedTransformer``: canonical names are TL's own."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from torch import Tensor

from mi_assert.backends.base import (
    CaptureComplete,
    EditFn,
    ModelHandle,
    ModelWeights,
    TLConfigShapes,
    capture_until_complete,
    config_as_dict,
    hook_from_edit,
)


class TransformerLensHandle(TLConfigShapes, ModelHandle):
    backend = "transformer_lens"

    def __init__(self, model: Any, spec: str | None = None, meta: dict[str, Any] | None = None) -> None:
        super().__init__(model, spec, meta)

    @property
    def cfg(self) -> Any:
        return self.model.cfg

    def own_name(self) -> str | None:
        return getattr(self.cfg, "model_name", None)

    def config_dict(self) -> dict[str, Any]:
        return config_as_dict(self.cfg)

    @property
    def tokenizer(self) -> Any | None:
        return getattr(self.model, "tokenizer", None)

    def _tl_name(self, name: str) -> str:
        """Canonical name → TL hook name (aliases for attention-only and LN-free models)."""
        if not self.has_mlp and name.endswith("hook_resid_mid"):
            # TL's attention-only blocks never call hook_resid_mid: resid_mid == resid_post.
            return name.replace("hook_resid_mid", "hook_resid_post")
        if name == "ln_final.hook_normalized" and self.cfg.normalization_type is None:
            return f"blocks.{self.n_layers - 1}.hook_resid_post"
        return name

    def _run(
        self,
        tokens: Tensor,
        edits: Mapping[str, Sequence[EditFn]],
        capture: Iterable[str],
        keep_graph: bool = False,
    ) -> tuple[Tensor, dict[str, Tensor]]:
        fwd_hooks: list[tuple[str, Any]] = []
        for name, fns in edits.items():
            for fn in fns:
                fwd_hooks.append((self._tl_name(name), hook_from_edit(fn)))
        cache: dict[str, Tensor] = {}
        for name in capture:
            fwd_hooks.append((self._tl_name(name), _tl_capture(cache, name, keep_graph)))
        logits = self.model.run_with_hooks(tokens, fwd_hooks=fwd_hooks, return_type="logits")
        return logits, cache

    def _capture(self, tokens: Tensor, names: list[str]) -> dict[str, Tensor]:
        cache: dict[str, Tensor] = {}
        fwd_hooks = [(self._tl_name(n), capture_until_complete(cache, n, len(names))) for n in names]
        try:  # return_type=None: no unembedding even if a hook fires only at the very end
            self.model.run_with_hooks(tokens, fwd_hooks=fwd_hooks, return_type=None)
        except CaptureComplete:
            pass
        return cache

    def weights(self) -> ModelWeights:
        return ModelWeights.from_tl(self.model)


def _tl_capture(cache: dict[str, Tensor], name: str, keep_graph: bool) -> Any:
    def hook(act: Tensor, hook: Any) -> None:
        cache[name] = act if keep_graph else act.detach()

    return hook
