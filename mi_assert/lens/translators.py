"""The tuned lens's per-layer affine translators (Belrose et al. 2023) and their metadata.

For the residual stream ``h_l`` (``blocks.{l}.hook_resid_post``) the tuned lens decodes
``unembed(ln_final(A_l h_l + b_l))`` with the model's own final norm and unembedding
(:class:`~mi_assert.lens.readout.Readout`); the logit lens is ``A_l = I, b_l = 0``. A
:class:`TunedLens` holds only the translators and metadata, never the model's weights.

Parametrisation and layout follow the ``tuned-lens`` package (``tuned_lens/nn/lenses.py``):

* each translator is a ``Linear(d_model, d_model)`` added residually,
  ``h + (W h + b)``, with ``W`` and ``b`` initialised to zero (so ``A = I + W`` starts at the
  identity and ``b`` at zero; weight decay pulls toward the identity, as in the package);
* ``layer_translators`` has ``n_layers`` entries indexed by the *input* of block ``i``
  (``hidden_states[i]`` in Hugging Face terms): entry 0 reads the embeddings
  (``blocks.0.hook_resid_pre``) and entry ``l + 1`` reads ``blocks.{l}.hook_resid_post``. The
  last block's output is the model's final hidden state and needs no translator (identity).
  So ``layer_translators.state_dict()`` (keys ``"{i}.weight"``, ``"{i}.bias"``) loads into the
  package's ``TunedLens.layer_translators`` for the same model;
* :class:`LensConfig` carries the package's ``TunedLensConfig`` fields under its names
  (``base_model_name_or_path``, ``d_model``, ``num_hidden_layers``, ``bias``,
  ``base_model_revision``, ``unembed_hash``, ``lens_type``) plus mi-assert's own (the package
  drops unknown keys with a warning).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import torch
from torch import Tensor

from mi_assert.backends.base import ModelHandle
from mi_assert.errors import MiAssertInputError
from mi_assert.lens.readout import Readout, tuned_lens_unembed_hash, unembed_sha256

LENS_TYPE = "linear_tuned_lens"
#: mi-assert's layout version (config.json ``format``)
FORMAT = "mi-assert-lens/1"


@dataclass
class LensConfig:
    """What a saved lens says about itself (``config.json``)."""

    # --- the tuned-lens package's TunedLensConfig fields, same names ---
    base_model_name_or_path: str
    d_model: int
    num_hidden_layers: int
    bias: bool = True
    base_model_revision: str | None = None
    #: the package's hash of the unembedding (its ``tensor_hash``)
    unembed_hash: str | None = None
    lens_type: str = LENS_TYPE
    # --- mi-assert's additions ---
    format: str = FORMAT
    #: sha256 (16 hex) of the float32 bytes of W_U: what the lens checks on use
    unembed_sha256: str | None = None
    #: the model's checkpoint hash (``ModelHandle.checkpoint_hash``) and spec when trained
    model_checkpoint: str | None = None
    model_spec: str | None = None
    #: the hook each translator reads, in translator order
    hook_names: list[str] = field(default_factory=list)
    #: how the lens was trained (steps, lr, seed, batch_size, n_tokens, final loss per layer ...)
    training: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LensConfig:
        known = {f.name for f in fields(cls)}
        missing = [k for k in ("base_model_name_or_path", "d_model", "num_hidden_layers")
                   if k not in data]
        if missing:
            raise MiAssertInputError(f"lens config lacks {', '.join(missing)}; has "
                                     f"{', '.join(sorted(data)) or 'no keys'}")
        return cls(**{k: v for k, v in data.items() if k in known})


def lens_hooks(n_layers: int) -> list[str]:
    """Hooks the translators read: the embeddings, then every block's output but the last."""
    return ["blocks.0.hook_resid_pre", *(f"blocks.{i}.hook_resid_post" for i in range(n_layers - 1))]


class TunedLens(torch.nn.Module):
    """Per-layer translators (module docstring); decode with :meth:`logits`."""

    def __init__(self, config: LensConfig) -> None:
        super().__init__()
        self.config = config
        d = int(config.d_model)
        translators = []
        for _ in range(int(config.num_hidden_layers)):
            lin = torch.nn.Linear(d, d, bias=config.bias)
            torch.nn.init.zeros_(lin.weight)
            if lin.bias is not None:
                torch.nn.init.zeros_(lin.bias)
            translators.append(lin)
        self.layer_translators = torch.nn.ModuleList(translators)

    @classmethod
    def for_model(cls, model: Any, *, bias: bool = True) -> TunedLens:
        """An untrained (identity) lens for ``model``, with its metadata filled in."""
        from mi_assert.loading import resolve_model

        handle = resolve_model(model)
        config = LensConfig(
            base_model_name_or_path=str(handle.own_name() or handle.spec), d_model=handle.d_model,
            num_hidden_layers=handle.n_layers, bias=bias,
            unembed_hash=tuned_lens_unembed_hash(handle), unembed_sha256=unembed_sha256(handle),
            model_checkpoint=handle.checkpoint_hash(), model_spec=handle.spec,
            hook_names=lens_hooks(handle.n_layers))
        lens = cls(config)
        return lens.to(handle.device)

    @property
    def n_layers(self) -> int:
        return int(self.config.num_hidden_layers)

    @property
    def d_model(self) -> int:
        return int(self.config.d_model)

    def translator_index(self, layer: int) -> int | None:
        """Translator of ``blocks.{layer}.hook_resid_post`` (None for the last block: identity)."""
        if not 0 <= layer < self.n_layers:
            raise MiAssertInputError(f"layer {layer!r} is out of range: the lens has "
                                     f"{self.n_layers} layers (0..{self.n_layers - 1})")
        return None if layer == self.n_layers - 1 else layer + 1

    def transform_hidden(self, h: Tensor, layer: int) -> Tensor:
        """``A_l h + b_l`` for ``h`` = ``blocks.{layer}.hook_resid_post``."""
        idx = self.translator_index(layer)
        if idx is None:
            return h
        translator: torch.nn.Linear = self.layer_translators[idx]  # type: ignore[assignment]
        return h + translator(h.to(translator.weight.dtype)).to(h.dtype)

    def logits(self, h: Tensor, layer: int, readout: Readout, tokens: Tensor | None = None) -> Tensor:
        """Lens logits of ``h`` through the model's final norm and unembedding."""
        return readout(self.transform_hidden(h, layer), tokens)

    def affine(self, layer: int) -> tuple[Tensor, Tensor]:
        """``(A_l, b_l)`` of layer ``layer`` as in the paper (``A = I + W``)."""
        eye = torch.eye(self.d_model)
        idx = self.translator_index(layer)
        if idx is None:
            return eye, torch.zeros(self.d_model)
        t: torch.nn.Linear = self.layer_translators[idx]  # type: ignore[assignment]
        bias = t.bias.detach().cpu() if t.bias is not None else torch.zeros(self.d_model)
        return eye + t.weight.detach().cpu(), bias

    def model_warnings(self, handle: ModelHandle) -> list[str]:
        """Refuse a model of another shape; say (not refuse) when its unembedding differs
        from the one the lens was trained with (a lens from another checkpoint may be tested
        on purpose)."""
        if (handle.d_model, handle.n_layers) != (self.d_model, self.n_layers):
            raise MiAssertInputError(
                f"the lens has d_model={self.d_model}, {self.n_layers} layers (trained for "
                f"{self.config.base_model_name_or_path!r}); model {handle.spec!r} has "
                f"d_model={handle.d_model}, {handle.n_layers} layers")
        out = []
        mine = self.config.unembed_sha256
        if mine is not None and mine != unembed_sha256(handle):
            out.append(f"lens trained on another model: its unembedding hash {mine} differs "
                       f"from {handle.spec!r}'s {unembed_sha256(handle)} (trained for "
                       f"{self.config.model_spec or self.config.base_model_name_or_path!r})")
        return out

    def describe(self) -> dict[str, Any]:
        c = self.config
        return {"lens": "tuned", "lens_trained_for": c.model_spec or c.base_model_name_or_path,
                "lens_unembed_sha256": c.unembed_sha256,
                **{f"lens_{k}": v for k, v in c.training.items()
                   if k in ("steps", "lr", "seed", "batch_size", "n_tokens")}}
