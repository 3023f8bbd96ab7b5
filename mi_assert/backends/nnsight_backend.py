"""Backend over nnsight: canonical hooks become reads and writes of module inputs/outputs.

Two kinds of model are supported:

* a Hugging Face model (``transformers``) wrapped by nnsight (``TransformersModel``,
  the deprecated ``LanguageModel``, or a plain ``NNsight``): canonical hooks are translated
  through the architecture table in :mod:`mi_assert.backends.architectures` (GPT-2, the
  Llama family: Llama, Mistral, Qwen2, and GPT-NeoX / Pythia);
* a TransformerLens ``HookedTransformer`` wrapped in ``nnsight.NNsight``: its ``HookPoint``
  modules are the canonical hooks, so each hook is the output of the module of that name.

One forward pass is one nnsight trace with one invoke: every site the call needs is visited in
execution order, activations are viewed in TransformerLens shapes, edited, captured, and
written back. A batch of any size (e.g. stacked patched variants, see
:func:`mi_assert.backends.batching.run_stacked_variants`) is a single forward.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from mi_assert.backends.architectures import (
    FUSED_QKV_VIEWS,
    Architecture,
    HookSite,
    Site,
    View,
    architecture_for,
    from_canonical,
    to_canonical,
)
from mi_assert.backends.base import (
    EditFn,
    ModelHandle,
    ModelWeights,
    config_as_dict,
    tl_has_pos_embed,
)
from mi_assert.errors import MiAssertInputError, UnsupportedModelError
from mi_assert.hooks import HookName

#: TransformerLens hook kinds inside a block, in the order a HookedTransformer calls them
#: (nnsight must be asked for values in execution order).
_TL_BLOCK_ORDER: tuple[str, ...] = (
    "hook_resid_pre", "attn.hook_q", "attn.hook_k", "attn.hook_v", "attn.hook_attn_scores",
    "attn.hook_pattern", "attn.hook_z", "hook_attn_out", "hook_resid_mid", "hook_mlp_out",
    "hook_resid_post",
)
_TL_PRE_ORDER: tuple[str, ...] = ("hook_embed", "hook_pos_embed")


@dataclass
class _SitePlan:
    """What one ``_run`` does at one site: which canonical names it serves, in which views."""

    site: Site
    layer: int | None
    rank: tuple[int, int]
    names: dict[str, View] = field(default_factory=dict)


class NNsightHandle(ModelHandle):
    """A model wrapped by nnsight, seen through canonical TransformerLens hook names."""

    backend = "nnsight"

    def __init__(self, model: Any, spec: str | None = None, meta: dict[str, Any] | None = None) -> None:
        module = getattr(model, "_module", None)
        if module is None:
            raise UnsupportedModelError(
                f"NNsightHandle needs an nnsight-wrapped model (nnsight.NNsight, LanguageModel or "
                f"TransformersModel); got {type(model).__module__}.{type(model).__name__}"
            )
        self.module: torch.nn.Module = module
        self._tl_cfg: Any | None = None
        self._arch: Architecture | None = None
        if _is_hooked_transformer(module):
            self._tl_cfg = module.cfg
        elif hasattr(module, "config") and hasattr(module.config, "model_type"):
            self._arch = architecture_for(module.config, what=f"model {type(module).__name__}")
            _ensure_eager_attention(module)
        else:
            raise UnsupportedModelError(
                f"nnsight wraps a {type(module).__module__}.{type(module).__name__}, which mi-assert "
                "cannot map to canonical hooks: wrap a TransformerLens HookedTransformer or a "
                "Hugging Face model of a supported architecture "
                f"({', '.join(_supported())})"
            )
        super().__init__(model, spec, meta)

    @classmethod
    def from_hooked_transformer(
        cls, model: Any, spec: str | None = None, meta: dict[str, Any] | None = None
    ) -> NNsightHandle:
        """Wrap a HookedTransformer in ``nnsight.NNsight`` (used by ``load_model`` for zoo models)."""
        from nnsight import NNsight

        return cls(NNsight(model), spec, meta)

    @classmethod
    def from_hf(cls, hf_model: Any, tokenizer: Any | None = None, spec: str | None = None) -> NNsightHandle:
        """Wrap a Hugging Face model: ``TransformersModel`` when there is a tokenizer, else ``NNsight``."""
        if tokenizer is not None:
            from nnsight import TransformersModel

            return cls(TransformersModel(hf_model, tokenizer=tokenizer), spec)
        from nnsight import NNsight

        return cls(NNsight(hf_model), spec)

    # ----- shape facts ------------------------------------------------------------------
    def _hf(self, *names: str) -> int:
        cfg = self.module.config
        for name in names:
            value = getattr(cfg, name, None)
            if value is not None:
                return int(value)
        raise UnsupportedModelError(f"config of {self.spec!r} has none of {names}")

    @property
    def n_layers(self) -> int:
        return int(self._tl_cfg.n_layers) if self._tl_cfg else self._hf("num_hidden_layers", "n_layer")

    @property
    def n_heads(self) -> int:
        return int(self._tl_cfg.n_heads) if self._tl_cfg else self._hf("num_attention_heads", "n_head")

    @property
    def d_model(self) -> int:
        return int(self._tl_cfg.d_model) if self._tl_cfg else self._hf("hidden_size", "n_embd")

    @property
    def d_head(self) -> int:
        return int(self._tl_cfg.d_head) if self._tl_cfg else self.d_model // self.n_heads

    @property
    def d_vocab(self) -> int:
        return int(self._tl_cfg.d_vocab) if self._tl_cfg else self._hf("vocab_size")

    @property
    def n_ctx(self) -> int:
        if self._tl_cfg:
            return int(self._tl_cfg.n_ctx)
        return self._hf("max_position_embeddings", "n_positions", "n_ctx")

    @property
    def d_vocab_out(self) -> int:
        out = int(getattr(self._tl_cfg, "d_vocab_out", -1) or -1) if self._tl_cfg else -1
        return out if out > 0 else self.d_vocab

    @property
    def has_mlp(self) -> bool:
        return not bool(self._tl_cfg.attn_only) if self._tl_cfg else True

    @property
    def parallel_attn_mlp(self) -> bool:
        if self._tl_cfg is not None:
            return bool(getattr(self._tl_cfg, "parallel_attn_mlp", False))
        assert self._arch is not None
        return self._arch.parallel(self.module.config)

    @property
    def has_pos_embed(self) -> bool:
        if self._tl_cfg is not None:
            return tl_has_pos_embed(self._tl_cfg)
        assert self._arch is not None
        return "hook_pos_embed" in self._arch.pre_block

    @property
    def tokenizer(self) -> Any | None:
        tok = getattr(self.model, "tokenizer", None)  # TransformersModel
        return tok if tok is not None else getattr(self.module, "tokenizer", None)

    @property
    def torch_module(self) -> torch.nn.Module:
        """The wrapped module (parameter names as its own library spells them)."""
        return self.module

    @property
    def device(self) -> torch.device:
        """The device of the first parameter that is not offloaded (accelerate keeps offloaded
        ones on the meta device between forwards)."""
        return next((p.device for p in self.module.parameters() if not p.is_meta), super().device)

    def own_name(self) -> str | None:
        if self._tl_cfg is not None:
            return getattr(self._tl_cfg, "model_name", None)
        return getattr(self.module.config, "name_or_path", None)

    def config_dict(self) -> dict[str, Any]:
        return config_as_dict(self._tl_cfg if self._tl_cfg is not None else self.module.config)

    def weights(self) -> ModelWeights:
        if self._tl_cfg is not None:
            return ModelWeights.from_tl(self.module)
        assert self._arch is not None
        devices = {p.device for p in self.module.parameters() if not p.is_meta}
        if len(devices) > 1:
            raise MiAssertInputError(
                f"{self.spec!r} is sharded across {sorted(map(str, devices))} (device_map): "
                "weight-based claims (copying, composition, direct logit attribution) stack "
                "every layer's weights into one tensor and need them on one device; load the "
                "model on one device (or with offload to 'cpu'/'disk') for these claims"
            )
        with _onloaded(self.module):
            return self._arch.weights(self.module, self.module.config)

    def checkpoint_hash(self) -> str:
        with _onloaded(self.module):
            return super().checkpoint_hash()

    # ----- canonical name → site ------------------------------------------------------
    def _tl_site(self, hook: HookName) -> tuple[Site, int | None, tuple[int, int]]:
        """Site of a canonical hook on a HookedTransformer (HookPoint modules, TL aliases)."""
        cfg = self._tl_cfg
        assert cfg is not None, "_tl_site is for handles over a HookedTransformer"
        name, kind, layer = hook.name, hook.kind, hook.layer
        if kind == "hook_resid_mid" and not self.has_mlp:
            kind = "hook_resid_post"  # attention-only blocks never call hook_resid_mid
        if name == "ln_final.hook_normalized" and cfg.normalization_type is None:
            layer, kind = self.n_layers - 1, "hook_resid_post"
        if layer is None:
            if kind in _TL_PRE_ORDER:
                if kind == "hook_pos_embed" and not hasattr(self.module, "hook_pos_embed"):
                    raise UnsupportedModelError(
                        f"{self.spec!r} has no hook_pos_embed (positional embedding type "
                        f"{cfg.positional_embedding_type!r})"
                    )
                return Site(kind, "output", _TL_PRE_ORDER.index(kind)), None, (-1, _TL_PRE_ORDER.index(kind))
            return Site(kind, "output", 0), None, (self.n_layers, 0)
        order = _TL_BLOCK_ORDER.index(kind)
        return Site(f"blocks.{layer}.{kind}", "output", order), layer, (layer, order)

    def _site_for(self, hook: HookName) -> tuple[Site, View, int | None, tuple[int, int]]:
        if self._tl_cfg is not None:
            site, layer, rank = self._tl_site(hook)
            return site, "identity", layer, rank
        assert self._arch is not None
        hook_site: HookSite = self._arch.hook_site(hook.kind)
        if hook.kind in self._arch.pre_block:
            rank = (-1, hook_site.site.order)
        elif hook.kind in self._arch.post_block:
            rank = (self.n_layers, hook_site.site.order)
        else:
            rank = (hook.layer or 0, hook_site.site.order)
        return hook_site.site, hook_site.view, hook.layer, rank

    def _logits_site(self) -> Site:
        if self._tl_cfg is not None:
            return Site("unembed", "output", 0)
        assert self._arch is not None
        return self._arch.logits

    def _plan(self, names: Iterable[str]) -> list[_SitePlan]:
        plans: dict[tuple[str, str, tuple[str, ...], int | None], _SitePlan] = {}
        for name in names:
            site, view, layer, rank = self._site_for(self.parse_hook(name))
            key = (site.path(layer), site.port, site.ops, layer)
            plan = plans.setdefault(key, _SitePlan(site, layer, rank))
            plan.names[name] = view
        return sorted(plans.values(), key=lambda p: p.rank)

    # ----- the primitive --------------------------------------------------------------
    def _run(
        self,
        tokens: Tensor,
        edits: Mapping[str, Sequence[EditFn]],
        capture: Iterable[str],
        keep_graph: bool = False,
    ) -> tuple[Tensor, dict[str, Tensor]]:
        import nnsight

        capture = list(dict.fromkeys(capture))
        plans = self._plan([*edits, *capture])
        captured: dict[str, Tensor] = {}
        wanted = set(capture)
        for plan in plans:
            if plan.site.ops:
                self._instrument(plan.site.path(plan.layer))
        # --mi-remote: route the trace through nnsight's remote path (NDIF, a host URL, or
        # "local", nnsight's serialize-and-run simulation of it). Only HF wrappers can go remote.
        remote = getattr(self, "remote", None)
        if remote and not hasattr(self.model, "_remote_backend"):
            raise MiAssertInputError(
                f"remote execution ({remote!r}) needs a Hugging Face model wrapped by nnsight "
                f"(TransformersModel / LanguageModel); {self.spec!r} is a "
                f"{type(self.model).__name__}, which nnsight can only run locally"
            )
        trace_kwargs: dict[str, Any] = {"remote": remote} if remote else {}
        with self.model.trace(tokens, **trace_kwargs):
            for plan in plans:
                self._visit(plan, edits, wanted, captured, keep_graph, tokens.shape[0])
            for value in captured.values():
                nnsight.save(value)
            logits = nnsight.save(self._read(self._logits_site(), None))
        if not isinstance(logits, Tensor):  # a ModelOutput from a Hugging Face head
            logits = logits.logits
        acts = {name: captured[name] for name in capture}
        # with keep_graph the captured tensors themselves are what gradients are taken against
        return logits.to(self.device), acts if keep_graph else self._gathered(acts)

    def _capture(self, tokens: Tensor, names: list[str]) -> dict[str, Tensor]:
        """Visit the sites in execution order and stop the trace after the last: the layers
        after it and the head never run. Remote traces run in full (:meth:`_run`)."""
        import nnsight

        if getattr(self, "remote", None):
            return self._run(tokens, {}, names)[1]
        plans = self._plan(names)
        for plan in plans:
            if plan.site.ops:
                self._instrument(plan.site.path(plan.layer))
        captured: dict[str, Tensor] = {}
        wanted = set(names)
        with self.model.trace(tokens) as tracer:
            for plan in plans:
                self._visit(plan, {}, wanted, captured, False, tokens.shape[0])
            for value in captured.values():
                nnsight.save(value)
            tracer.stop()
        return self._gathered({name: captured[name] for name in names})

    def _gathered(self, values: dict[str, Tensor]) -> dict[str, Tensor]:
        """Activations of a model sharded across devices (``device_map``) moved to one device,
        the handle's; a no-op on one device."""
        device = self.device
        return {name: v.to(device) for name, v in values.items()}

    def _instrument(self, path: str) -> None:
        """Source-instrument a module before tracing.

        nnsight swaps in the instrumented ``forward`` when ``.source`` is first read; read inside
        a trace after the module started running, the current call would run uninstrumented
        and the operation would never fire.
        """
        done: set[str] = self.__dict__.setdefault("_instrumented", set())
        if path not in done:
            _ = self.model.get(path).source
            done.add(path)

    def _locate(self, site: Site, layer: int | None) -> Any:
        """The envoy (or nnsight source operation) holding ``site``."""
        target: Any = self.model.get(site.path(layer))
        for op in site.ops:
            target = getattr(target.source, op)
        return target

    def _affine(self, site: Site, layer: int | None) -> tuple[Tensor, Tensor]:
        """(weight, bias) of the layer-norm module at ``site`` (read outside the trace)."""
        root = getattr(self.model, "_module", self.model)
        module = dict(root.named_modules())[site.path(layer)]
        with _onloaded(module):
            weight = module.weight.detach()
            bias = getattr(module, "bias", None)  # RMSNorm has none
            return weight, (bias.detach() if bias is not None else torch.zeros_like(weight))

    def _read(self, site: Site, layer: int | None) -> Any:
        target = self._locate(site, layer)
        value = target.output if site.port == "output" else target.input
        if site.tuple_index is not None and isinstance(value, tuple):
            value = value[site.tuple_index]
        return value

    def _write(self, site: Site, layer: int | None, target: Any, raw: Any, value: Tensor) -> None:
        if site.tuple_index is not None and isinstance(raw, tuple):
            value = (*raw[: site.tuple_index], value, *raw[site.tuple_index + 1:])  # type: ignore[assignment]
        if site.port == "output":
            target.output = value
        else:
            target.input = value

    def _visit(
        self,
        plan: _SitePlan,
        edits: Mapping[str, Sequence[EditFn]],
        wanted: set[str],
        captured: dict[str, Tensor],
        keep_graph: bool,
        batch: int,
    ) -> None:
        """Read one site, apply the edits of every canonical name it serves, capture, write back."""
        target = self._locate(plan.site, plan.layer)
        raw = target.output if plan.site.port == "output" else target.input
        value = raw[plan.site.tuple_index] if plan.site.tuple_index is not None and isinstance(raw, tuple) else raw
        views: dict[View, Tensor] = {}
        affine = self._affine(plan.site, plan.layer) if "ln_affine" in plan.names.values() else None
        for view in dict.fromkeys(plan.names.values()):
            views[view] = to_canonical(view, value, self.n_heads, batch, affine, self.d_head)
        changed = False
        for name, view in plan.names.items():
            for fn in edits.get(name, ()):
                new = fn(views[view])
                if not isinstance(new, Tensor) or new.shape != views[view].shape:
                    raise MiAssertInputError(
                        f"an edit at {name!r} returned "
                        f"{tuple(new.shape) if isinstance(new, Tensor) else type(new).__name__}; "
                        f"it must return a tensor of the activation's shape {tuple(views[view].shape)}"
                    )
                views[view] = new
                changed = True
        for name, view in plan.names.items():
            if name not in wanted:
                continue
            if keep_graph:
                if not views[view].requires_grad:
                    # frozen weights: make the activation a leaf so gradients reach it
                    views[view] = views[view].detach().requires_grad_(True)
                    changed = True
                elif view != "identity":
                    changed = True  # the canonical view must be what flows on
                captured[name] = views[view]
            else:
                captured[name] = views[view].detach()
        if not changed:
            return
        fused = next((first for first, trio in FUSED_QKV_VIEWS.items() if set(trio) & set(views)), None)
        if fused is not None:  # q, k and v share one projection: write back all three at once
            new_value = from_canonical(fused, views, value)  # type: ignore[arg-type]
        else:
            (view,) = views
            new_value = from_canonical(view, views, value, affine)
        self._write(plan.site, plan.layer, target, raw, new_value)


@contextmanager
def _onloaded(module: torch.nn.Module) -> Iterator[None]:
    """Parameters that accelerate offloaded (``device_map`` with ``"cpu"`` / ``"disk"``
    offload: the meta device between forwards) loaded on their execution device, for reading
    weights outside a forward pass."""
    if not any(p.is_meta for p in module.parameters()):
        yield
        return
    from accelerate.utils import align_module_device, has_offloaded_params

    with ExitStack() as stack:
        for sub in module.modules():
            if has_offloaded_params(sub):
                stack.enter_context(align_module_device(sub))
        yield


def _supported() -> list[str]:
    from mi_assert.backends.architectures import supported_model_types

    return ["HookedTransformer", *(f"HF {t}" for t in supported_model_types())]


def _is_hooked_transformer(module: Any) -> bool:
    return any(c.__name__ == "HookedTransformer" for c in type(module).__mro__)


def _ensure_eager_attention(module: Any) -> None:
    """Attention patterns exist as tensors only under eager attention: switch to it if needed."""
    config = module.config
    impl = getattr(config, "_attn_implementation", None)
    if getattr(config, "reorder_and_upcast_attn", False):
        raise UnsupportedModelError(
            "GPT-2 with reorder_and_upcast_attn=True computes attention in a separate path that "
            "mi-assert does not map; load it with reorder_and_upcast_attn=False"
        )
    if impl != "eager":
        warnings.warn(
            f"{type(module).__name__} uses attn_implementation={impl!r}; mi-assert switches it "
            "to 'eager' so attention patterns can be read and patched (load it with "
            "attn_implementation='eager' to avoid this)",
            stacklevel=3,
        )
        module.set_attn_implementation("eager")
