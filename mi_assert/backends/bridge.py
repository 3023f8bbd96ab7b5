"""Backend over TransformerLens's ``TransformerBridge`` (TL 3.9 and TL 4).

The bridge wraps a Hugging Face model and exposes TransformerLens-style hooks. Canonical names
are the bridge's legacy aliases (``blocks.{l}.hook_resid_pre``, ``attn.hook_z``, ...), which
the bridge resolves per architecture; for architectures in
:mod:`mi_assert.backends.architectures` the mapping is checked against the Hugging Face model
and residual identities in the test suite (``tests/backends``). For any other architecture a
warning says the aliases are unverified (``handle.check_residual_identities`` checks them).

Weights are not processed (``enable_compatibility_mode(no_processing=True)``), so activations
equal the Hugging Face model's. This module imports nothing from ``transformer_lens.utils`` or
``HookedTransformerConfig`` so that it works on TL 4, which removed them.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from mi_assert.backends.architectures import ARCHITECTURES, architecture_for
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
from mi_assert.errors import UnsupportedModelError


def _bridge_class() -> Any:
    try:  # TL 3.9 and 4 both export it here
        from transformer_lens.model_bridge import TransformerBridge
    except ImportError as exc:  # pragma: no cover - depends on the installed TL
        raise UnsupportedModelError(
            "backend 'bridge' needs transformer_lens.model_bridge.TransformerBridge "
            "(TransformerLens >= 3.0)"
        ) from exc
    return TransformerBridge


class BridgeHandle(TLConfigShapes, ModelHandle):
    """A ``TransformerBridge`` seen through canonical hook names."""

    backend = "bridge"

    def __init__(self, model: Any, spec: str | None = None, meta: dict[str, Any] | None = None,
                 compatibility_mode: bool = True) -> None:
        super().__init__(model, spec, meta)
        if compatibility_mode and not getattr(model, "compatibility_mode", False):
            # legacy hook semantics, weights left as they are (no folding, no centering)
            model.enable_compatibility_mode(disable_warnings=True, no_processing=True)
        self._architecture = self._known_architecture()
        self._check_aliases()

    @classmethod
    def boot(
        cls,
        name_or_path: str,
        hf_model: Any | None = None,
        tokenizer: Any | None = None,
        device: torch.device | None = None,
        dtype: torch.dtype = torch.float32,
        placement: dict[str, Any] | None = None,
    ) -> BridgeHandle:
        """``TransformerBridge.boot_transformers`` (offline-capable with a local folder or ``hf_model``)."""
        bridge_cls = _bridge_class()
        kwargs: dict[str, Any] = dict(placement or {})
        if hf_model is not None:
            kwargs["hf_model"] = hf_model
        if tokenizer is not None:
            kwargs["tokenizer"] = tokenizer
        if device is not None and "device_map" not in kwargs and "n_devices" not in kwargs:
            kwargs["device"] = str(device)
        bridge = bridge_cls.boot_transformers(name_or_path, dtype=dtype, **kwargs)
        bridge.eval()
        return cls(bridge, name_or_path)

    def _known_architecture(self) -> str | None:
        hf_config = getattr(self.hf_model, "config", None)
        try:
            return architecture_for(hf_config).name if hf_config is not None else None
        except UnsupportedModelError:
            warnings.warn(
                f"TransformerBridge over model_type {getattr(hf_config, 'model_type', None)!r}: "
                "mi-assert has verified the bridge's hook aliases only for "
                f"{', '.join(ARCHITECTURES)}; run handle.check_residual_identities(tokens) "
                "before trusting activations",
                stacklevel=3,
            )
            return None

    def _check_aliases(self) -> None:
        available = set(self.model.hook_dict)
        missing = [n for n in self.hook_names() if n not in available]
        if missing:
            raise UnsupportedModelError(
                f"TransformerBridge for {self.spec!r} lacks hooks {missing[:6]}"
                f"{' ...' if len(missing) > 6 else ''}; mi-assert needs every canonical hook"
            )

    @property
    def hf_model(self) -> Any:
        return getattr(self.model, "original_model", None)

    @property
    def cfg(self) -> Any:
        return self.model.cfg

    def own_name(self) -> str | None:
        """The Hugging Face ``name_or_path`` (hub id or checkpoint folder), else TL's name."""
        hf_config = getattr(self.hf_model, "config", None)
        return getattr(hf_config, "name_or_path", None) or getattr(self.cfg, "model_name", None)

    def config_dict(self) -> dict[str, Any]:
        """The Hugging Face config when there is one (as nnsight's handle on the same model)."""
        hf_config = getattr(self.hf_model, "config", None)
        return config_as_dict(hf_config if hf_config is not None else self.cfg)

    @property
    def tokenizer(self) -> Any | None:
        return getattr(self.model, "tokenizer", None)

    @property
    def torch_module(self) -> Any:
        """The Hugging Face model when there is one: the bridge's own state dict renames it."""
        hf = self.hf_model
        return hf if hf is not None else self.model

    def _run(
        self,
        tokens: Tensor,
        edits: Mapping[str, Sequence[EditFn]],
        capture: Iterable[str],
        keep_graph: bool = False,
    ) -> tuple[Tensor, dict[str, Tensor]]:
        fwd_hooks: list[tuple[str, Any]] = []
        resid_pre: dict[str, Tensor] = {}
        stashes: list[tuple[str, Any]] = []
        for name, fns in edits.items():
            for fn in fns:
                if name.endswith(".hook_resid_mid"):
                    # The bridge's hook_resid_mid is the input of ln2: editing it would change
                    # what the MLP reads but not the residual stream. Apply the edit as the
                    # equivalent change of attn_out (resid_mid = resid_pre + attn_out).
                    block = name.removesuffix(".hook_resid_mid")
                    fwd_hooks.append((f"{block}.hook_attn_out", _resid_mid_edit_hook(fn, resid_pre, block)))
                    stashes.append((f"{block}.hook_resid_pre", _capture_hook(resid_pre, block, True)))
                else:
                    fwd_hooks.append((name, hook_from_edit(fn)))
        fwd_hooks += stashes  # after the edits at resid_pre, so they see the edited value
        cache: dict[str, Tensor] = {}
        for name in capture:
            fwd_hooks.append((name, _capture_hook(cache, name, keep_graph)))
        with warnings.catch_warnings():
            if keep_graph:  # the norm-layer reconstruction the view above asks for, on purpose
                warnings.filterwarnings("ignore", message=".*native-autograd path.*")
            logits = self.model.run_with_hooks(tokens, fwd_hooks=fwd_hooks, return_type="logits")
        return logits, cache

    def _capture(self, tokens: Tensor, names: list[str]) -> dict[str, Tensor]:
        cache: dict[str, Tensor] = {}
        fwd_hooks = [(n, capture_until_complete(cache, n, len(names))) for n in names]
        try:
            self.model.run_with_hooks(tokens, fwd_hooks=fwd_hooks, return_type=None)
        except CaptureComplete:
            pass
        return cache

    def weights(self) -> ModelWeights:
        hf = self.hf_model
        if self._architecture is not None and hf is not None:
            return ARCHITECTURES[self._architecture].weights(hf, hf.config)
        return ModelWeights.from_tl(self.model)


def _resid_mid_edit_hook(fn: EditFn, resid_pre: dict[str, Tensor], block: str) -> Any:
    def hook(attn_out: Tensor, hook: Any) -> Tensor:
        pre = resid_pre[block]
        return fn(pre + attn_out) - pre

    return hook


def _capture_hook(cache: dict[str, Tensor], name: str, keep_graph: bool) -> Any:
    def hook(act: Tensor, hook: Any) -> Tensor | None:
        if not keep_graph:
            cache[name] = act.detach()
            return None
        # Some bridge hooks see a reshaped copy (q/k/v/z are split into heads for the hook);
        # returning it makes the bridge use this tensor downstream, so gradients reach it. At a
        # norm layer's hook_normalized, a new tensor object (a view): the bridge's norm layers
        # treat "the same object came back" as "not edited" and compute their output natively,
        # off this graph (seen on Llama's RMSNorm). Elsewhere the same object: at resid_mid
        # (ln2's input) a new object would feed the MLP but not the residual connection.
        out = act.view_as(act) if name.endswith("hook_normalized") else act
        cache[name] = out
        return out

    return hook
