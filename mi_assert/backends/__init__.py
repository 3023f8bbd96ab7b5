"""Backends: adapt whatever model a user holds to a :class:`ModelHandle`."""

from __future__ import annotations

from typing import Any

from mi_assert.backends.base import Intervention, ModelHandle, ModelWeights
from mi_assert.errors import UnsupportedModelError

BACKENDS: tuple[str, ...] = ("transformer_lens", "bridge", "nnsight")

__all__ = ["BACKENDS", "Intervention", "ModelHandle", "ModelWeights", "as_handle"]


def as_handle(model: Any, spec: str | None = None) -> ModelHandle:
    """Wrap a HookedTransformer, TransformerBridge, nnsight model, or pass a handle through."""
    if isinstance(model, ModelHandle):
        return model
    cls_names = {c.__name__ for c in type(model).__mro__}
    if "HookedTransformer" in cls_names:
        from mi_assert.backends.transformer_lens import TransformerLensHandle

        return TransformerLensHandle(model, spec)
    if "TransformerBridge" in cls_names:
        from mi_assert.backends.bridge import BridgeHandle

        return BridgeHandle(model, spec)
    if "Envoy" in cls_names or "NNsight" in cls_names:
        from mi_assert.backends.nnsight_backend import NNsightHandle

        return NNsightHandle(model, spec)
    raise UnsupportedModelError(
        f"cannot use a {type(model).__module__}.{type(model).__name__} as a model: pass a "
        "transformer_lens.HookedTransformer, a TransformerBridge, an nnsight-wrapped model "
        "(nnsight.NNsight / LanguageModel / TransformersModel), or a handle from "
        "mi_assert.load_model(...)"
    )
