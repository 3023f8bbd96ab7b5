"""The model's own final norm and unembedding, as a function of a residual stream.

A lens decodes a hidden state ``h`` as the model decodes its last one: ``unembed(ln_final(h))``.
:class:`Readout` takes those two steps from the model the handle holds (nothing is copied into
a lens):

* a TransformerLens ``HookedTransformer`` (the ``transformer_lens`` backend, or nnsight over a
  HookedTransformer): ``model.ln_final`` (none when ``normalization_type`` is None) and
  ``model.unembed``, with the logit soft cap where the config has one;
* a Hugging Face model (the ``nnsight`` backend): the final norm module the architecture table
  names for ``ln_final.hook_normalized`` and ``get_output_embeddings()``;
* anything else: a forward pass with the last block's ``hook_resid_post`` replaced by ``h``
  (exact for any backend, one model pass per call).

The module path is checked once per readout: ``readout(resid_post of the last block)`` must
equal the model's logits (:meth:`Readout.verify`); where it does not (a model whose head does
more than norm + unembed) the readout switches to the forward-pass path.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from mi_assert.backends.base import ModelHandle

#: relative tolerance of the module path against the model's own logits (float32 rounding)
VERIFY_RTOL = 1e-4


def _tl_readout(module: Any) -> Callable[[Tensor], Tensor] | None:
    cfg = getattr(module, "cfg", None)
    unembed = getattr(module, "unembed", None)
    if cfg is None or not isinstance(unembed, torch.nn.Module):
        return None
    norm = getattr(module, "ln_final", None) if getattr(cfg, "normalization_type", None) else None
    softcap = float(getattr(cfg, "output_logits_soft_cap", -1.0) or -1.0)

    def readout(x: Tensor) -> Tensor:
        if norm is not None:
            x = norm(x)
        logits = unembed(x)
        if softcap > 0:
            logits = softcap * torch.tanh(logits / softcap)
        return logits

    return readout


def _hf_readout(handle: ModelHandle) -> Callable[[Tensor], Tensor] | None:
    arch = getattr(handle, "_arch", None)
    module = handle.torch_module
    head = getattr(module, "get_output_embeddings", lambda: None)()
    if arch is None or head is None:
        return None
    site = arch.post_block.get("ln_final.hook_normalized")
    if site is None:
        return None
    norm = dict(module.named_modules()).get(site.site.path(None))
    if norm is None:
        return None
    softcap = float(getattr(getattr(module, "config", None), "final_logit_softcapping", None) or -1.0)

    def readout(x: Tensor) -> Tensor:
        logits = head(norm(x))
        if softcap > 0:
            logits = softcap * torch.tanh(logits / softcap)
        return logits

    return readout


class Readout:
    """``readout(h, tokens)``: logits ``[batch, pos, d_vocab]`` of residuals ``[batch, pos,
    d_model]`` through the model's final norm and unembedding (``tokens``: the prompts ``h``
    came from, used only by the forward-pass path)."""

    def __init__(self, handle: ModelHandle) -> None:
        self.handle = handle
        module = handle.torch_module
        fn = _tl_readout(module) or _hf_readout(handle)
        self._fn = fn
        self.source = ("model modules (final norm + unembedding)" if fn is not None
                       else "forward pass from the last block's resid_post")
        self._verified = fn is None

    @property
    def last_hook(self) -> str:
        return f"blocks.{self.handle.n_layers - 1}.hook_resid_post"

    def verify(self, final_resid: Tensor, logits: Tensor) -> None:
        """Check the module path against the model's logits once; fall back if it differs."""
        if self._verified:
            return
        self._verified = True
        with torch.no_grad():
            mine = self(final_resid, None).float()
        ref = logits.float().to(mine.device)
        scale = float(ref.abs().max()) or 1.0
        if mine.shape != ref.shape or float((mine - ref).abs().max()) > VERIFY_RTOL * scale:
            self._fn = None
            self.source = "forward pass from the last block's resid_post"

    def __call__(self, h: Tensor, tokens: Tensor | None) -> Tensor:
        if self._fn is not None:
            return self._fn(h)
        if tokens is None:
            raise RuntimeError("the forward-pass readout needs the prompts' tokens")
        logits, _ = self.handle.run_with_edits(tokens, {self.last_hook: lambda _act: h},
                                               keep_graph=torch.is_grad_enabled())
        return logits


def unembedding_matrix(handle: ModelHandle) -> Tensor:
    """``W_U`` ``[d_model, d_vocab]`` (detached; read from the model, not copied)."""
    module = handle.torch_module
    unembed = getattr(module, "unembed", None)
    if unembed is not None and getattr(unembed, "W_U", None) is not None:
        return unembed.W_U.detach()
    head = getattr(module, "get_output_embeddings", lambda: None)()
    if head is not None:
        return head.weight.detach().T
    return handle.weights().W_U


def unembed_sha256(handle: ModelHandle) -> str:
    """16 hex digits of sha256 over the float32 bytes of ``W_U`` ``[d_model, d_vocab]``: what
    :func:`~mi_assert.lens.store.load_lens` compares to warn about a lens from another model."""
    w = unembedding_matrix(handle).float().cpu().contiguous().numpy()
    return hashlib.sha256(w.tobytes()).hexdigest()[:16]


def tuned_lens_unembed_hash(handle: ModelHandle) -> str:
    """The ``unembed_hash`` the ``tuned-lens`` package writes (``tuned_lens.utils.tensor_hash``
    of the ``[d_vocab, d_model]`` unembedding: sha256 of numpy's summarised string at one
    decimal), so a lens saved here passes that package's check on the same model."""
    import numpy as np

    w = unembedding_matrix(handle).float().cpu().T.contiguous().numpy()
    return hashlib.sha256(str.encode(np.array_str(w, precision=1))).hexdigest()
