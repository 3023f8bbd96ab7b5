"""The functional model behind a handle of any backend.

The kernels compute on TransformerLens-layout weights. A TransformerLens handle has them; so
does an nnsight handle over a ``HookedTransformer``. For a Hugging Face model (an nnsight handle
over one, or the bridge's), the weights are converted once, per weight version, with
TransformerLens's own converters into a ``HookedTransformer`` twin
(:func:`mi_assert.backends.hf_loading.hooked_transformer_from_hf`); the kernels then run on the
twin's fused weights. Either way a one-prompt probe must reproduce the handle's *own* logits
(its backend's forward, not the twin's) before the kernels are trusted with it.

The twin holds one copy of the weights beside the model's for as long as the model lives.
"""

from __future__ import annotations

import weakref
from typing import Any

import torch
from torch import Tensor

from mi_assert.kernels.functional import (
    FunctionalModel,
    full_logits,
    functional_model,
    unsupported_reason,
)

#: max |functional - the handle's own logits| on a one-prompt probe before a model is trusted
SELF_CHECK_ATOL = 1e-4


def is_hooked_transformer(module: Any) -> bool:
    return "HookedTransformer" in {c.__name__ for c in type(module).__mro__}


def underlying_model(handle: Any) -> tuple[str, Any]:
    """``("tl", HookedTransformer)``, ``("hf", PreTrainedModel)`` or ``("none", reason)``."""
    backend = getattr(handle, "backend", None)
    if backend == "transformer_lens":
        model = getattr(handle, "model", None)
        if is_hooked_transformer(model):
            return "tl", model
        return "none", "handle.model is not a HookedTransformer"
    if backend == "nnsight":
        module = getattr(handle, "module", None)
        if is_hooked_transformer(module):
            return "tl", module
        if hasattr(getattr(module, "config", None), "model_type"):
            return "hf", module
        return "none", f"nnsight wraps a {type(module).__name__}"
    if backend == "bridge":
        hf_model = getattr(handle, "hf_model", None)
        if hasattr(getattr(hf_model, "config", None), "model_type"):
            return "hf", hf_model
        return "none", "the bridge exposes no Hugging Face model"
    return "none", f"backend {backend or type(handle).__name__!r}"


def _pads_left(tokenizer: Any) -> bool:
    return getattr(tokenizer, "padding_side", "right") == "left"


def handle_support_reason(handle: Any) -> str | None:
    """Why the kernels cannot run ``handle``'s model (None when they can, pending the probe)."""
    kind, model = underlying_model(handle)
    if kind == "none":
        return str(model)
    if kind == "tl":
        if _pads_left(getattr(model, "tokenizer", None)):
            # TL masks left padding from the tokenizer's attention mask; the kernels run unmasked
            return "the tokenizer pads on the left (the kernels do not apply TL's padding mask)"
        return unsupported_reason(model)
    # nnsight and the bridge run a token tensor without a padding mask (whatever side the
    # tokenizer pads), as the kernels do; the probe compares with their own forward
    return _hf_reason(model)


def _hf_reason(hf_model: Any) -> str | None:
    from mi_assert.backends.architectures import architecture_for
    from mi_assert.errors import UnsupportedModelError

    try:
        architecture_for(hf_model.config, what="model")
    except UnsupportedModelError as err:
        return str(err)
    params = list(hf_model.parameters())
    if any(p.is_meta for p in params) or len({p.device for p in params}) > 1:
        return "the model is sharded or offloaded (device_map); the kernels need one device"
    dtype = params[0].dtype
    if dtype not in (torch.float32, torch.float64):
        return f"dtype={dtype} (use precision= for fast numerics on an fp32 model)"
    if getattr(hf_model, "_forward_hooks", None) or getattr(hf_model, "_forward_pre_hooks", None):
        return "a hook is attached to the model"
    return None


def _weights_key(module: Any) -> tuple[Any, ...]:
    return tuple((p.data_ptr(), p._version, p.dtype, p.device) for p in module.parameters())


#: per Hugging Face model: (weight key, the twin's fused weights or None, the probe's verdict)
_TWINS: weakref.WeakKeyDictionary[Any, tuple[tuple[Any, ...], FunctionalModel | None]] = (
    weakref.WeakKeyDictionary())
#: per TransformerLens model: (the fused weights' key, whether they reproduce its logits)
_PROBED: weakref.WeakKeyDictionary[Any, tuple[Any, bool]] = weakref.WeakKeyDictionary()


def _probe_ok(fm: FunctionalModel, probe: Tensor, theirs: Tensor) -> bool:
    with torch.no_grad():
        ours = full_logits(fm, probe)
    return bool(torch.isfinite(ours).all()) and float((ours - theirs.to(ours)).abs().max()) \
        <= SELF_CHECK_ATOL


def checked_functional(model: Any, tokens: Tensor) -> FunctionalModel | None:
    """The fused weights of a supported ``HookedTransformer``, after a one-time probe (cached
    per weight version) that they reproduce its logits; None when they do not."""
    fm = functional_model(model)
    key = _weights_key(model)
    verdict = _PROBED.get(model)
    if verdict is None or verdict[0] != key:
        probe = tokens[:1, : min(tokens.shape[1], 16)]
        with torch.no_grad():
            theirs = model(probe, return_type="logits")
        verdict = (key, _probe_ok(fm, probe, theirs))
        _PROBED[model] = verdict
    return fm if verdict[1] else None


def checked_functional_for(handle: Any, tokens: Tensor) -> FunctionalModel | None:
    """The fused weights the kernels run ``handle`` with, or None (unsupported, or the probe
    did not reproduce the handle's own logits)."""
    if handle_support_reason(handle) is not None:
        return None
    kind, model = underlying_model(handle)
    if kind == "tl":
        return checked_functional(model, tokens)
    key = _weights_key(model)
    cached = _TWINS.get(model)
    if cached is not None and cached[0] == key:
        return cached[1]
    from mi_assert.backends.hf_loading import hooked_transformer_from_hf

    with torch.no_grad():
        twin = hooked_transformer_from_hf(model, None, next(model.parameters()).device)
    fm: FunctionalModel | None = None
    if unsupported_reason(twin) is None:
        fm = functional_model(twin)
        probe = tokens[:1, : min(tokens.shape[1], 16)]
        with torch.no_grad():
            theirs = handle.forward(probe)
        if not _probe_ok(fm, probe, theirs):
            fm = None
    _TWINS[model] = (key, fm)  # the twin module itself can go: fm holds the tensors it needs
    return fm
