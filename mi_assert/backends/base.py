"""The handle: one small interface over every backend.

Assertions, sweeps and statistics only ever talk to a :class:`ModelHandle`. A backend
implements :meth:`ModelHandle._run` (one forward pass with activation edits and captures at
canonical hook names) plus a few properties; everything else (caching, interventions,
gradients) is written once here on top of it.
"""

from __future__ import annotations

import hashlib
import json
import re
import weakref
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, cast

import torch
from torch import Tensor

from mi_assert.cost import count_forward
from mi_assert.errors import MiAssertInputError, check_finite
from mi_assert.hooks import HookName, all_hook_names, parse_hook
from mi_assert.shapes import Activation, Logits, Tokens

#: An edit receives the activation at a hook (canonical shape) and returns its replacement.
EditFn = Callable[[Tensor], Tensor]

#: checkpoint hash per torch module: {id(module): (weak ref, weights version, hash)}
_CHECKPOINT_HASHES: dict[int, tuple[weakref.ref[Any], tuple[tuple[int, int], ...], str]] = {}

#: Config keys that switch devices, caches or which hooks fire without changing what the model
#: computes: the identity hash leaves them out, so moving or re-hooking a model keeps its identity.
RUNTIME_CONFIG_KEYS: frozenset[str] = frozenset({
    "device", "n_devices", "dtype", "torch_dtype", "seed", "default_prepend_bos",
    "use_attn_result", "use_split_qkv_input", "use_hook_mlp_in", "use_attn_in", "use_hook_tokens",
    "transformers_version", "attn_implementation", "use_cache", "output_attentions",
    "output_hidden_states", "return_dict",
})
#: TransformerLens's ``model_name`` for a config built by hand: a placeholder, not a name
UNNAMED_MODEL_NAMES: frozenset[str] = frozenset({"", "custom"})


@dataclass(frozen=True)
class Intervention:
    """Replace or add to the activation at a canonical hook.

    ``value`` is a tensor broadcastable to the selected slice, or a callable mapping the
    selected slice to its new value. ``positions`` selects sequence positions (query positions
    for patterns) and ``heads`` selects heads on per-head hooks; None means all.
    """

    hook: str
    value: Tensor | float | Callable[[Tensor], Tensor]
    mode: Literal["replace", "add"] = "replace"
    positions: Sequence[int] | None = None
    heads: Sequence[int] | None = None


@dataclass
class ModelWeights:
    """Weights in TransformerLens layout, for weight-based claims (copying, composition).

    ``W_Q/W_K/W_V``: [n_layers, n_heads, d_model, d_head]; ``W_O``: [n_layers, n_heads, d_head,
    d_model]; ``W_E``: [d_vocab, d_model]; ``W_U``: [d_model, d_vocab].
    """

    W_E: Tensor
    W_U: Tensor
    W_Q: Tensor
    W_K: Tensor
    W_V: Tensor
    W_O: Tensor
    W_pos: Tensor | None = None
    extras: dict[str, Tensor] = field(default_factory=dict)

    @classmethod
    def from_tl(cls, model: Any) -> ModelWeights:
        """The (detached) weights of a model with TransformerLens's ``W_*`` properties."""
        W_pos = getattr(model, "W_pos", None)
        return cls(
            W_E=model.W_E.detach(), W_U=model.W_U.detach(), W_Q=model.W_Q.detach(),
            W_K=model.W_K.detach(), W_V=model.W_V.detach(), W_O=model.W_O.detach(),
            W_pos=W_pos.detach() if W_pos is not None else None,
        )


class ModelHandle(ABC):
    """A model as mi-assert sees it, whatever library holds it."""

    backend: ClassVar[str]

    def __init__(self, model: Any, spec: str | None = None, meta: dict[str, Any] | None = None) -> None:
        self.model = model
        self._spec = spec
        #: loader facts (zoo name, seed, ``bos_token_id`` / ``special_token_ids`` declared for
        #: models without a tokenizer, planted ground truth)
        self.meta: dict[str, Any] = dict(meta or {})
        self.load_kwargs: dict[str, Any] = {}

    @property
    def spec(self) -> str:
        """The model's identity in records, reports and baseline file names.

        Loaders set it (a zoo spec, a local path, a hub name). A model the user passes in is
        ``custom-<own name>-<hash>`` (``custom-<hash>`` when it has no name): its
        :meth:`own_name` and :meth:`identity_hash`, so two models never share a baseline file
        and the same model gives the same identity in every run. Derived on first use.
        """
        if self._spec is None:
            self._spec = custom_spec(self.own_name(), self.identity_hash())
        return self._spec

    @spec.setter
    def spec(self, value: str) -> None:
        self._spec = value

    def own_name(self) -> str | None:
        """The model's own name or checkpoint path (TL ``cfg.model_name``, HF ``name_or_path``);
        None when it has none."""
        return None

    def config_dict(self) -> dict[str, Any]:
        """The model's config as plain data (backends return their library's config)."""
        return {"n_layers": self.n_layers, "n_heads": self.n_heads, "d_model": self.d_model,
                "d_head": self.d_head, "d_vocab": self.d_vocab, "d_vocab_out": self.d_vocab_out,
                "n_ctx": self.n_ctx, "has_mlp": self.has_mlp}

    def identity_hash(self) -> str:
        """8 hex digits of sha256 over the config (without :data:`RUNTIME_CONFIG_KEYS` and
        private ``_`` keys) and the weights' :meth:`checkpoint_hash`, which reads every
        parameter's and buffer's full bytes on CPU once per handle (no subsampling)."""
        config = {k: v for k, v in self.config_dict().items()
                  if not str(k).startswith("_") and k not in RUNTIME_CONFIG_KEYS}
        text = json.dumps(config, sort_keys=True, default=str)
        return hashlib.sha256(f"{text}\n{self.checkpoint_hash()}".encode()).hexdigest()[:8]

    # ----- shape facts (backends override) -------------------------------------------------
    @property
    @abstractmethod
    def n_layers(self) -> int: ...

    @property
    @abstractmethod
    def n_heads(self) -> int: ...

    @property
    @abstractmethod
    def d_model(self) -> int: ...

    @property
    @abstractmethod
    def d_head(self) -> int: ...

    @property
    @abstractmethod
    def d_vocab(self) -> int: ...

    @property
    @abstractmethod
    def n_ctx(self) -> int: ...

    @property
    def d_vocab_out(self) -> int:
        """Size of the output vocabulary (the logits' last axis); models compiled from RASP
        programs have fewer output than input tokens."""
        return self.d_vocab

    @property
    def has_mlp(self) -> bool:
        return True

    @property
    def has_pos_embed(self) -> bool:
        """Whether the model adds a learned positional embedding (``hook_pos_embed``); rotary
        models (Llama) have none."""
        return True

    @property
    def parallel_attn_mlp(self) -> bool:
        """Whether attention and MLP both read ``resid_pre`` and write ``resid_post`` (GPT-NeoX /
        Pythia): then there is no residual stream between them, so no ``hook_resid_mid``."""
        return False

    @property
    def tokenizer(self) -> Any | None:
        return None

    @property
    def bos_token_id(self) -> int | None:
        """Token id prepended to prompts (None when the model has no BOS convention).

        ``meta["bos_token_id"]`` (set by the loader, e.g. for planted models) wins over the
        tokenizer's.
        """
        if "bos_token_id" in self.meta:
            return cast("int | None", self.meta["bos_token_id"])
        tok = self.tokenizer
        return getattr(tok, "bos_token_id", None) if tok is not None else None

    @property
    def special_token_ids(self) -> frozenset[int]:
        """Ids that are never content tokens: BOS, the tokenizer's special ids and the ids
        declared with ``as_handle(model, special_token_ids=...)`` (PAD, EOS, ...)."""
        ids = {int(i) for i in self.meta.get("special_token_ids", ())}
        if self.bos_token_id is not None:
            ids.add(int(self.bos_token_id))
        tok = self.tokenizer
        if tok is not None:
            ids.update(int(i) for i in getattr(tok, "all_special_ids", []) or [])
        return frozenset(ids)

    def content_token_ids(self) -> Tensor:
        """Ids generated prompts and answers may use: valid as input (``< d_vocab``) and as an
        answer (``< d_vocab_out``), and not in :attr:`special_token_ids`."""
        n_valid = min(self.d_vocab, self.d_vocab_out)
        special = self.special_token_ids
        ids = [i for i in range(n_valid) if i not in special]
        if not ids:
            raise MiAssertInputError(
                f"model {self.spec!r} has no content token ids: ids valid as input and output "
                f"are 0..{n_valid - 1} (d_vocab={self.d_vocab}, d_vocab_out={self.d_vocab_out}) "
                f"and all of them are special {sorted(special)}; declare fewer special_token_ids"
            )
        return torch.tensor(ids, dtype=torch.long)

    @property
    def torch_module(self) -> torch.nn.Module:
        """The ``torch.nn.Module`` holding the weights (the wrapped model, for wrappers)."""
        return cast(torch.nn.Module, self.model)

    @property
    def device(self) -> torch.device:
        return next(self.torch_module.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.torch_module.parameters()).dtype

    @abstractmethod
    def weights(self) -> ModelWeights:
        """Weights in TransformerLens layout (see :class:`ModelWeights`)."""

    def _modules(self) -> list[torch.nn.Module]:
        """Every ``nn.Module`` that a forward pass runs through (the wrapper and what it wraps:
        a TransformerBridge does not register its Hugging Face model as a submodule)."""
        modules: list[torch.nn.Module] = []
        for root in (self.torch_module, self.model):
            if isinstance(root, torch.nn.Module) and all(root is not m for m in modules):
                modules.append(root)
        return modules

    def _run_eval_mode(
        self,
        tokens: Tensor,
        edits: Mapping[str, Sequence[EditFn]],
        capture: Iterable[str],
        keep_graph: bool = False,
    ) -> tuple[Logits, dict[str, Activation]]:
        """:meth:`_run` in eval mode: a model left in ``.train()`` would run with dropout and
        give different evidence for the same inputs and seeds. The user's mode is restored."""
        count_forward(int(tokens.shape[0]) if tokens.ndim > 1 else 1)
        with eval_mode(self._modules()):
            return self._run(tokens, edits, capture, keep_graph)

    # ----- the one primitive a backend must provide -----------------------------------------
    @abstractmethod
    def _run(
        self,
        tokens: Tensor,
        edits: Mapping[str, Sequence[EditFn]],
        capture: Iterable[str],
        keep_graph: bool = False,
    ) -> tuple[Logits, dict[str, Activation]]:
        """One forward pass: apply ``edits`` at hooks, capture activations after edits.

        Returns logits ``[batch, pos, d_vocab]`` and the captured activations in canonical
        shapes. With ``keep_graph`` the captured tensors stay in the autograd graph.
        """

    # ----- validation --------------------------------------------------------------------
    def hook_names(self) -> list[str]:
        return all_hook_names(self.n_layers, self.has_mlp, self.has_pos_embed, self.parallel_attn_mlp)

    def parse_hook(self, name: str) -> HookName:
        return parse_hook(name, self.n_layers, self.has_mlp, self.has_pos_embed, self.parallel_attn_mlp)

    def check_layer(self, layer: int) -> int:
        if not isinstance(layer, int) or not 0 <= layer < self.n_layers:
            raise MiAssertInputError(
                f"layer {layer!r} is out of range: the model has {self.n_layers} layers "
                f"(0..{self.n_layers - 1})"
            )
        return layer

    def check_head(self, layer: int, head: int) -> tuple[int, int]:
        self.check_layer(layer)
        if not isinstance(head, int) or not 0 <= head < self.n_heads:
            raise MiAssertInputError(
                f"head {head!r} is out of range: layer {layer} has {self.n_heads} heads "
                f"(0..{self.n_heads - 1})"
            )
        return layer, head

    def to_tokens(self, inputs: Any, prepend_bos: bool = True) -> Tokens:
        """Token ids ``[batch, pos]`` on the model's device from strings or ids.

        Models without a tokenizer accept only token-id tensors or nested int lists.
        """
        if isinstance(inputs, str):
            inputs = [inputs]
        from mi_assert.tokenization import as_token_tensor, encode_prompts

        if isinstance(inputs, Tensor):
            tokens = as_token_tensor(inputs)
        elif isinstance(inputs, (list, tuple)) and inputs and isinstance(inputs[0], str):
            tok = self.tokenizer
            if tok is None:
                raise MiAssertInputError(
                    f"model {self.spec!r} has no tokenizer: pass token ids (a LongTensor "
                    "[batch, pos]) instead of strings"
                )
            encoded = encode_prompts(tok, inputs, self.bos_token_id if prepend_bos else None)
            tokens = torch.tensor(encoded, dtype=torch.long)
        else:
            tokens = as_token_tensor(inputs)
        if tokens.ndim == 1:
            tokens = tokens[None]
        if tokens.ndim != 2:
            raise MiAssertInputError(
                f"tokens must be [batch, pos]; got shape {tuple(tokens.shape)}"
            )
        if tokens.numel() == 0:
            raise MiAssertInputError("empty token batch: need at least one prompt of length >= 1")
        if tokens.is_floating_point():
            raise MiAssertInputError("tokens must be integer ids, got a floating-point tensor")
        if tokens.shape[1] > self.n_ctx:
            raise MiAssertInputError(
                f"sequence length {tokens.shape[1]} exceeds the model's context n_ctx="
                f"{self.n_ctx}; shorten the prompts (e.g. a smaller repeat length)"
            )
        lo, hi = int(tokens.min()), int(tokens.max())
        if lo < 0 or hi >= self.d_vocab:
            raise MiAssertInputError(
                f"token ids must lie in 0..{self.d_vocab - 1} (d_vocab={self.d_vocab}); "
                f"got range {lo}..{hi}"
            )
        return tokens.to(self.device)

    # ----- derived operations --------------------------------------------------------------
    def forward(self, tokens: Any) -> Logits:
        with torch.no_grad():
            logits, _ = self._run_eval_mode(self.to_tokens(tokens), {}, ())
        return logits

    def run_with_cache(
        self, tokens: Any, hooks: Iterable[str], check_nan: bool = True
    ) -> tuple[Logits, dict[str, Activation]]:
        """Logits and the activations at ``hooks`` (only those are kept)."""
        names = [self.parse_hook(h).name for h in hooks]
        with torch.no_grad():
            logits, cache = self._run_eval_mode(self.to_tokens(tokens), {}, names)
        if check_nan:
            _check_captured_finite(cache)
        return logits, cache

    def capture_activations(
        self, tokens: Any, hooks: Iterable[str], check_nan: bool = True
    ) -> dict[str, Activation]:
        """The activations at ``hooks`` and nothing else: no logits, and on backends that can
        (TransformerLens, the bridge, nnsight) the forward pass ends once the last of them is
        computed, so a claim on layer 5 of 12 runs 5½ blocks. The values equal
        :meth:`run_with_cache`'s: the layers before the stop run exactly as in a full pass."""
        names = list(dict.fromkeys(self.parse_hook(h).name for h in hooks))
        if not names:
            return {}
        ids = self.to_tokens(tokens)
        count_forward(int(ids.shape[0]) if ids.ndim > 1 else 1)
        with torch.no_grad(), eval_mode(self._modules()):
            cache = self._capture(ids, names)
        if check_nan:
            _check_captured_finite(cache)
        return cache

    def _capture(self, tokens: Tensor, names: list[str]) -> dict[str, Activation]:
        """Backend part of :meth:`capture_activations` (in eval mode, without gradients).

        This default runs the whole model; backends that can end a forward pass early override it.
        """
        return self._run(tokens, {}, names)[1]

    def run_with_interventions(
        self,
        tokens: Any,
        interventions: Sequence[Intervention],
        cache_hooks: Iterable[str] = (),
    ) -> tuple[Tensor, dict[str, Tensor]]:
        edits: dict[str, list[EditFn]] = {}
        for iv in interventions:
            parsed = self.parse_hook(iv.hook)
            edits.setdefault(parsed.name, []).append(_edit_from_intervention(iv, parsed, self))
        names = [self.parse_hook(h).name for h in cache_hooks]
        with torch.no_grad():
            return self._run_eval_mode(self.to_tokens(tokens), edits, names)

    def run_with_edits(
        self,
        tokens: Any,
        edits: Mapping[str, EditFn | Sequence[EditFn]],
        cache_hooks: Iterable[str] = (),
        keep_graph: bool = False,
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """Lowest-level public entry: arbitrary edit functions at canonical hooks."""
        normalised: dict[str, list[EditFn]] = {}
        for name, fns in edits.items():
            key = self.parse_hook(name).name
            normalised[key] = list(fns) if isinstance(fns, (list, tuple)) else [fns]  # type: ignore[list-item]
        names = [self.parse_hook(h).name for h in cache_hooks]
        if keep_graph:
            return self._run_eval_mode(self.to_tokens(tokens), normalised, names, keep_graph=True)
        with torch.no_grad():
            return self._run_eval_mode(self.to_tokens(tokens), normalised, names)

    def gradients(
        self, tokens: Any, hooks: Iterable[str], metric: Callable[[Tensor], Tensor]
    ) -> tuple[Tensor, dict[str, Tensor], dict[str, Tensor]]:
        """Logits, activations and d(sum of metric)/d(activation) at ``hooks``."""
        names = [self.parse_hook(h).name for h in hooks]
        with torch.enable_grad():
            logits, acts = self._run_eval_mode(self.to_tokens(tokens), {}, names, keep_graph=True)
            value = metric(logits)
            grads = torch.autograd.grad(value.sum(), [acts[n] for n in names], allow_unused=True)
        out_grads = {
            n: (g if g is not None else torch.zeros_like(acts[n])).detach()
            for n, g in zip(names, grads, strict=True)
        }
        return logits.detach(), {n: a.detach() for n, a in acts.items()}, out_grads

    # ----- identity ---------------------------------------------------------------------
    def describe(self) -> dict[str, Any]:
        """What reports and baselines record about the model (``Evidence.model``)."""
        return {"spec": self.spec, "backend": self.backend, "checkpoint": self.checkpoint_hash(),
                "device": str(self.device), "dtype": str(self.dtype).replace("torch.", "")}

    def weights_version(self) -> tuple[tuple[int, int], ...]:
        """``(data pointer, in-place version)`` of every parameter and buffer a forward pass
        reads: cheap, and it changes with any in-place edit through the tensor
        (``W[...] = x`` under no_grad, ``copy_``, ``load_state_dict``) or a re-assigned
        ``.data``. Writes through ``param.data`` bypass the version counter: after those,
        clear caches keyed by it (``mi_assert.heads.measure.clear_cache()``)."""
        seen: set[int] = set()
        out: list[tuple[int, int]] = []
        for module in self._modules():
            for tensor in [*module.parameters(), *module.buffers()]:
                if id(tensor) not in seen:
                    seen.add(id(tensor))
                    out.append((tensor.data_ptr(), tensor._version))
        return tuple(out)

    def checkpoint_hash(self) -> str:
        """A short sha256 over :attr:`torch_module`'s state dict: identifies the weights in
        reports/baselines (under the parameter names of the library that owns them).

        Computed once per :meth:`weights_version` of the module, whichever handle asks (each
        claim on a raw model wraps it anew), and read straight from the tensors' memory."""
        module = self.torch_module
        version = self.weights_version()
        held = _CHECKPOINT_HASHES.get(id(module))
        if held is not None and held[0]() is module and held[1] == version:
            return held[2]
        digest = hashlib.sha256()
        for name, param in sorted(module.state_dict().items()):
            if not isinstance(param, Tensor):
                continue
            digest.update(name.encode())
            digest.update(param.detach().to("cpu", torch.float32).contiguous().numpy().data)
        text = digest.hexdigest()[:16]
        key = id(module)

        def forget(_: Any) -> None:
            _CHECKPOINT_HASHES.pop(key, None)

        try:
            ref = weakref.ref(module, forget)
        except TypeError:
            return text
        _CHECKPOINT_HASHES[key] = (ref, version, text)
        return text

    def check_residual_identities(self, tokens: Any, atol: float = 1e-4) -> None:
        """Assert resid_pre + attn_out == resid_mid and resid_mid + mlp_out == resid_post
        (parallel attention/MLP: resid_pre + attn_out + mlp_out == resid_post).

        Hook aliases drift between library versions; this catches a backend whose names point
        at the wrong tensors. Raises ``AssertionError`` naming the layer and the gap.
        """
        hooks: list[str] = []
        for layer in range(self.n_layers):
            kinds = ["hook_resid_pre", "hook_attn_out", "hook_resid_post"]
            kinds += [] if self.parallel_attn_mlp else ["hook_resid_mid"]
            kinds += ["hook_mlp_out"] if self.has_mlp else []
            hooks += [f"blocks.{layer}.{k}" for k in kinds]
        _, cache = self.run_with_cache(tokens, hooks)
        if self.parallel_attn_mlp:
            for layer in range(self.n_layers):
                c = {k: cache[f"blocks.{layer}.{k}"].float() for k in
                     ("hook_resid_pre", "hook_attn_out", "hook_mlp_out", "hook_resid_post")}
                gap = (c["hook_resid_pre"] + c["hook_attn_out"] + c["hook_mlp_out"]
                       - c["hook_resid_post"]).abs().max()
                assert gap <= atol, (f"{self.backend}: layer {layer} resid_pre + attn_out + mlp_out "
                                     f"!= resid_post (max gap {gap:.2e})")
            return
        for layer in range(self.n_layers):
            c = {k: cache[f"blocks.{layer}.{k}"].float() for k in
                 ("hook_resid_pre", "hook_attn_out", "hook_resid_mid", "hook_resid_post")}
            gap = (c["hook_resid_pre"] + c["hook_attn_out"] - c["hook_resid_mid"]).abs().max()
            assert gap <= atol, f"{self.backend}: layer {layer} resid_pre + attn_out != resid_mid (max gap {gap:.2e})"
            mlp = cache[f"blocks.{layer}.hook_mlp_out"].float() if self.has_mlp else 0.0
            gap = (c["hook_resid_mid"] + mlp - c["hook_resid_post"]).abs().max()
            assert gap <= atol, f"{self.backend}: layer {layer} resid_mid + mlp_out != resid_post (max gap {gap:.2e})"

    def __repr__(self) -> str:
        return (f"<{type(self).__name__} {self.spec!r} backend={self.backend} "
                f"layers={self.n_layers} heads={self.n_heads} d_model={self.d_model} "
                f"device={self.device}>")


class TLConfigShapes:
    """Shape facts read from a TransformerLens-style ``cfg`` (HookedTransformer, TransformerBridge).

    Mix in before :class:`ModelHandle`; the host provides ``cfg``.
    """

    cfg: Any

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
    def d_vocab_out(self) -> int:
        out = int(getattr(self.cfg, "d_vocab_out", -1) or -1)
        return out if out > 0 else self.d_vocab

    @property
    def has_mlp(self) -> bool:
        return not bool(getattr(self.cfg, "attn_only", False))

    @property
    def has_pos_embed(self) -> bool:
        return tl_has_pos_embed(self.cfg)

    @property
    def parallel_attn_mlp(self) -> bool:
        return bool(getattr(self.cfg, "parallel_attn_mlp", False))


@contextmanager
def eval_mode(roots: Iterable[torch.nn.Module]) -> Iterator[None]:
    """Inside the block every submodule of ``roots`` is in eval mode; after it, each module has
    its own ``training`` flag back (a model may mix modes, e.g. frozen dropout in one block).

    The flags are set directly rather than through ``.eval()``: wrappers override ``train()``
    to reach modules outside their tree, which ``roots`` already lists.
    """
    training = {id(m): m for root in roots for m in root.modules() if m.training}
    for module in training.values():
        module.training = False
    try:
        yield
    finally:
        for module in training.values():
            module.training = True


class CaptureComplete(Exception):  # noqa: N818 - control flow, not an error
    """Raised from a capture hook once every wanted activation is in: ends the forward pass."""


def capture_until_complete(cache: dict[str, Tensor], name: str, n_wanted: int) -> Callable[[Tensor, Any], None]:
    """A TransformerLens-style hook storing the activation as ``cache[name]`` (detached) and
    raising :class:`CaptureComplete` when ``cache`` holds ``n_wanted`` activations: nothing
    after the last hook read is computed."""

    def hook(act: Tensor, hook: Any) -> None:
        cache[name] = act.detach()
        if len(cache) >= n_wanted:
            raise CaptureComplete

    return hook


def _check_captured_finite(cache: Mapping[str, Tensor]) -> None:
    for name, act in cache.items():
        if name.endswith("hook_attn_scores"):
            # causal masking writes -inf above the diagonal: check only real entries
            act = act.masked_fill(torch.isneginf(act), 0.0)
        check_finite(f"activation {name!r}", act)


def custom_spec(name: str | None, digest: str) -> str:
    """``custom-<name>-<digest>`` with the last component of ``name`` made file-name safe
    (``custom-<digest>`` when there is no usable name)."""
    last = (name or "").replace("\\", "/").rstrip("/").split("/")[-1]
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", last).strip("._-")[:40]
    return f"custom-{slug}-{digest}" if slug and slug not in UNNAMED_MODEL_NAMES else f"custom-{digest}"


def config_as_dict(cfg: Any) -> dict[str, Any]:
    """A library config (TL ``HookedTransformerConfig``, HF ``PretrainedConfig``) as a dict."""
    to_dict = getattr(cfg, "to_dict", None)
    return dict(to_dict()) if callable(to_dict) else dict(vars(cfg))


def hook_from_edit(fn: EditFn) -> Callable[[Tensor, Any], Tensor]:
    """A TransformerLens-style forward hook ``(act, hook) -> act`` applying an edit function
    (TL's ``run_with_hooks`` and the bridge's take the same hooks)."""

    def hook(act: Tensor, hook: Any) -> Tensor:
        return fn(act)

    return hook


def tl_has_pos_embed(cfg: Any) -> bool:
    """TransformerLens calls ``hook_pos_embed`` for learned (standard/shortformer) positions only."""
    return getattr(cfg, "positional_embedding_type", "standard") in ("standard", "shortformer")


def _edit_from_intervention(iv: Intervention, hook: HookName, handle: ModelHandle) -> EditFn:
    """Turn an :class:`Intervention` into an edit function on the canonical activation."""
    if iv.mode not in ("replace", "add"):
        raise MiAssertInputError(f"intervention mode {iv.mode!r}: allowed 'replace' or 'add'")
    if iv.heads is not None and hook.head_axis is None:
        raise MiAssertInputError(
            f"intervention on {hook.name!r} selects heads, but that hook has no head axis; "
            "per-head hooks are attn.hook_q/k/v/z/pattern/attn_scores"
        )

    def edit(act: Tensor) -> Tensor:
        index: list[Any] = [slice(None)] * act.ndim
        if iv.positions is not None:
            pos = torch.as_tensor(list(iv.positions), dtype=torch.long)
            n_pos = act.shape[hook.pos_axis]
            if pos.numel() and (int(pos.max()) >= n_pos or int(pos.min()) < -n_pos):
                raise MiAssertInputError(
                    f"intervention positions {list(iv.positions)} out of range for {hook.name!r} "
                    f"with {n_pos} positions"
                )
            index[hook.pos_axis] = (pos % n_pos).to(act.device)  # negative positions count from the end
        if iv.heads is not None:
            heads = list(iv.heads)
            for h in heads:
                handle.check_head(hook.layer or 0, h)
            index[hook.head_axis] = torch.as_tensor(heads, dtype=torch.long, device=act.device)  # type: ignore[index]
        # advanced indexing with two index tensors must broadcast them; use successive index_put
        out = act.clone()
        sel = _select(out, index)
        new = iv.value(sel) if callable(iv.value) else torch.as_tensor(iv.value).to(act.device, act.dtype)
        if iv.mode == "add":
            new = sel + new
        try:
            new = torch.broadcast_to(new, sel.shape)
        except RuntimeError:
            raise MiAssertInputError(
                f"intervention value for {hook.name!r} has shape {tuple(new.shape)}, which does "
                f"not broadcast to the selected slice {tuple(sel.shape)} (activation "
                f"{tuple(act.shape)}, positions={iv.positions}, heads={iv.heads}); give a tensor "
                "of that slice's shape or one that broadcasts to it") from None
        _assign(out, index, new)
        return out

    return edit


def _select(t: Tensor, index: list[Any]) -> Tensor:
    for axis, idx in enumerate(index):
        if isinstance(idx, Tensor):
            t = t.index_select(axis, idx)
    return t


def _assign(out: Tensor, index: list[Any], value: Tensor) -> None:
    tensor_axes = [a for a, i in enumerate(index) if isinstance(i, Tensor)]
    if not tensor_axes:
        out.copy_(value)
        return
    # build an open mesh so the selected sub-block is written exactly
    grids = []
    for axis in range(out.ndim):
        idx = index[axis] if isinstance(index[axis], Tensor) else torch.arange(out.shape[axis], device=out.device)
        shape = [1] * out.ndim
        shape[axis] = -1
        grids.append(idx.view(shape))
    out[tuple(grids)] = value
