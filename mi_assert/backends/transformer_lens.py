"""Backend over a TransformerLens ``HookedTransformer``: canonical names are TL's own."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from mi_assert.backends.base import EditFn, ModelHandle, ModelWeights


class TransformerLensHandle(ModelHandle):
    backend = "transformer_lens"

    def __init__(self, model: Any, spec: str | None = None, meta: dict[str, Any] | None = None) -> None:
        super().__init__(model, spec or getattr(model.cfg, "model_name", None))
        self.meta: dict[str, Any] = dict(meta or {})

    @property
    def cfg(self) -> Any:
        return self.model.cfg

    @property
    def n_layers(self) -> int:
        return int(self.cfg.n_layers)

    @property
    def n_heads(self) -> int:
        return int(self.cfg.n_heads)

    @property
    def d_model(self) -> int:
        return int(self.cfg.d_model)

    @property
    def d_head(self) -> int:
        return int(self.cfg.d_head)

    @property
    def d_vocab(self) -> int:
        return int(self.cfg.d_vocab)

    @property
    def n_ctx(self) -> int:
        return int(self.cfg.n_ctx)

    @property
    def has_mlp(self) -> bool:
        return not bool(self.cfg.attn_only)

    @property
    def tokenizer(self) -> Any | None:
        return getattr(self.model, "tokenizer", None)

    @property
    def bos_token_id(self) -> int | None:
        if "bos_token_id" in self.meta:
            return self.meta["bos_token_id"]
        return super().bos_token_id

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
                fwd_hooks.append((self._tl_name(name), _tl_edit(fn)))
        cache: dict[str, Tensor] = {}
        for name in capture:
            fwd_hooks.append((self._tl_name(name), _tl_capture(cache, name, keep_graph)))
        logits = self.model.run_with_hooks(tokens, fwd_hooks=fwd_hooks, return_type="logits")
        return logits, cache

    def weights(self) -> ModelWeights:
        m = self.model
        return ModelWeights(
            W_E=m.W_E.detach(),
            W_U=m.W_U.detach(),
            W_Q=m.W_Q.detach(),
            W_K=m.W_K.detach(),
            W_V=m.W_V.detach(),
            W_O=m.W_O.detach(),
            W_pos=m.W_pos.detach() if hasattr(m, "W_pos") else None,
        )


def _tl_edit(fn: EditFn) -> Any:
    def hook(act: Tensor, hook: Any) -> Tensor:
        return fn(act)

    return hook


def _tl_capture(cache: dict[str, Tensor], name: str, keep_graph: bool) -> Any:
    def hook(act: Tensor, hook: Any) -> None:
        cache[name] = act if keep_graph else act.detach()

    return hook


def is_hooked_transformer(model: Any) -> bool:
    try:
        from transformer_lens import HookedTransformer
    except ImportError:  # pragma: no cover - TL 4 removed it
        return False
    return isinstance(model, HookedTransformer)


def to_device_dtype(model: Any, device: str | torch.device | None, dtype: torch.dtype | None) -> Any:
    if device is not None:
        model = model.to(device)
    if dtype is not None:
        model = model.to(dtype)
    return model
