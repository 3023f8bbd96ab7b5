"""Backends: adapt whatever model a user holds to a :class:`ModelHandle`."""

from __future__ import annotations

import copy
import operator
from collections.abc import Iterable
from typing import Any

from mi_assert.backends.base import Intervention, ModelHandle, ModelWeights
from mi_assert.errors import MiAssertInputError, UnsupportedModelError

BACKENDS: tuple[str, ...] = ("transformer_lens", "bridge", "nnsight")

__all__ = ["BACKENDS", "Intervention", "ModelHandle", "ModelWeights", "as_handle"]


def as_handle(model: Any, spec: str | None = None, *, bos_token_id: int | None = None,
              special_token_ids: Iterable[int] | None = None) -> ModelHandle:
    """Wrap a HookedTransformer, TransformerBridge, nnsight model, or pass a handle through.

    A model without a tokenizer (e.g. compiled from a RASP program) declares its conventions
    here: ``bos_token_id`` is prepended to generated prompts and ``special_token_ids`` (PAD,
    EOS, ...) are never drawn as content tokens or answers. None keeps what the model or its
    tokenizer says. Declaring them for an existing handle returns a copy that has them.
    """
    handle = model if isinstance(model, ModelHandle) else _wrap(model, spec)
    declared = _declared_token_ids(handle, bos_token_id, special_token_ids)
    if not declared:
        return handle
    if handle is model:  # the caller's handle keeps what it had
        handle = copy.copy(handle)
        handle.meta = dict(handle.meta)
    handle.meta.update(declared)
    return handle


def _wrap(model: Any, spec: str | None) -> ModelHandle:
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


def _declared_token_ids(handle: ModelHandle, bos_token_id: Any,
                        special_token_ids: Any) -> dict[str, Any]:
    """The ``meta`` entries for declared BOS / special ids, each checked against ``d_vocab``."""
    declared: dict[str, Any] = {}
    if bos_token_id is not None:
        declared["bos_token_id"] = _token_id(handle, bos_token_id, "bos_token_id")
    if special_token_ids is not None:
        if isinstance(special_token_ids, (str, bytes)) or not isinstance(special_token_ids, Iterable):
            raise MiAssertInputError(
                f"special_token_ids must be a list of token ids (ints); got {special_token_ids!r}")
        declared["special_token_ids"] = tuple(sorted(
            {_token_id(handle, i, "special_token_ids") for i in special_token_ids}))
    return declared


def _token_id(handle: ModelHandle, value: Any, what: str) -> int:
    try:
        if isinstance(value, bool):
            raise TypeError
        value = operator.index(value)  # ints, numpy and 0-d torch integers
    except TypeError:
        raise MiAssertInputError(f"{what}: token ids are ints; got {value!r}") from None
    if not 0 <= value < handle.d_vocab:
        raise MiAssertInputError(
            f"{what}: token id {value} is outside the input vocabulary 0..{handle.d_vocab - 1} "
            f"(d_vocab={handle.d_vocab})")
    return int(value)
