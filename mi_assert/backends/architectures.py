"""Where each canonical hook lives inside a Hugging Face model, per architecture.

The nnsight backend reads and writes module inputs/outputs (and, for the attention pattern,
an operation inside the attention function via nnsight's ``.source``). This table says, for
each canonical (TransformerLens) hook kind, which *site* holds it and how to view the site's
tensor in TransformerLens's shape (:class:`View`). Adding an architecture means adding one
:class:`Architecture` entry; anything not listed raises :class:`UnsupportedModelError` naming
the supported ones.

Hook kinds that share a site (q, k, v all come from GPT-2's fused ``c_attn``) are read once
and written back once, so edits on several of them compose.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import Tensor

from mi_assert.backends.base import ModelWeights
from mi_assert.errors import UnsupportedModelError

#: how a canonical hook is cut out of its site's tensor (and pasted back)
View = Literal["identity", "q", "k", "v", "heads", "expand_batch", "causal_scores", "ln_affine",
               "head_q", "head_k", "head_v"]
#: views cutting q, k and v out of one fused projection: GPT-2's (q | k | v) and GPT-NeoX's
#: per-head (head, (q | k | v), d_head) layout
_QKV: tuple[View, View, View] = ("q", "k", "v")
_HEAD_QKV: tuple[View, View, View] = ("head_q", "head_k", "head_v")
FUSED_QKV_VIEWS: dict[str, tuple[str, str, str]] = {"q": _QKV, "head_q": _HEAD_QKV}


@dataclass(frozen=True)
class Site:
    """One place in the forward pass nnsight can read and overwrite.

    ``module`` is a dotted path from the root module with ``{layer}`` for block sites;
    ``port`` is the module's first input or its output; ``ops`` drills into operations of the
    module's ``forward`` with nnsight's ``.source`` (outer call first). ``order`` ranks the
    site within its layer in execution order: nnsight must be asked for sites in the order
    the model reaches them. ``tuple_index`` picks an element when the value is a tuple (older
    transformers returned tuples from blocks).
    """

    module: str
    port: Literal["input", "output"]
    order: int
    ops: tuple[str, ...] = ()
    tuple_index: int | None = None

    def path(self, layer: int | None) -> str:
        return self.module.format(layer=layer) if layer is not None else self.module


@dataclass(frozen=True)
class HookSite:
    """A canonical hook kind: its site and how to view it."""

    site: Site
    view: View = "identity"


@dataclass(frozen=True)
class Architecture:
    """Canonical-name → module-path table for one Hugging Face architecture."""

    name: str
    model_types: tuple[str, ...]
    #: global hooks; their order is relative to the layers: embeddings come before block 0
    pre_block: dict[str, HookSite]
    block: dict[str, HookSite]
    post_block: dict[str, HookSite]
    logits: Site
    weights: Callable[[Any, Any], ModelWeights] = field(compare=False, repr=False)
    #: hook kinds that need eager attention (attention weights materialised in Python)
    eager_only: tuple[str, ...] = ("attn.hook_pattern", "attn.hook_attn_scores")
    #: HF config attribute saying attention and MLP run in parallel (GPT-NeoX), with its default
    parallel_flag: tuple[str, bool] | None = None

    def parallel(self, hf_config: Any) -> bool:
        """Whether this model runs attention and MLP in parallel (no resid_mid)."""
        if self.parallel_flag is None:
            return False
        name, default = self.parallel_flag
        return bool(getattr(hf_config, name, default))

    def hook_site(self, kind: str) -> HookSite:
        for table in (self.pre_block, self.block, self.post_block):
            if kind in table:
                return table[kind]
        raise UnsupportedModelError(
            f"hook kind {kind!r} is not mapped for architecture {self.name!r}; mapped kinds: "
            f"{', '.join([*self.pre_block, *self.block, *self.post_block])}"
        )


def _gpt2_weights(module: Any, cfg: Any) -> ModelWeights:
    """GPT-2 weights in TransformerLens layout (same conversion as TL's ``convert_gpt2_weights``)."""
    n_heads = int(cfg.num_attention_heads)
    d_model = int(cfg.hidden_size)
    d_head = d_model // n_heads
    blocks = module.transformer.h
    w_q: list[Tensor] = []
    w_k: list[Tensor] = []
    w_v: list[Tensor] = []
    w_o: list[Tensor] = []
    for block in blocks:
        # Conv1D stores [in, out]; c_attn's out is concat(q, k, v), each (head, d_head)
        q, k, v = block.attn.c_attn.weight.detach().split(d_model, dim=1)
        for flat, dest in ((q, w_q), (k, w_k), (v, w_v)):
            dest.append(flat.reshape(d_model, n_heads, d_head).permute(1, 0, 2))
        w_o.append(block.attn.c_proj.weight.detach().reshape(n_heads, d_head, d_model))
    lm_head = module.lm_head.weight.detach()  # [d_vocab, d_model]
    return ModelWeights(
        W_E=module.transformer.wte.weight.detach(),
        W_U=lm_head.T,
        W_Q=torch.stack(w_q),
        W_K=torch.stack(w_k),
        W_V=torch.stack(w_v),
        W_O=torch.stack(w_o),
        W_pos=module.transformer.wpe.weight.detach(),
    )


_ATTN = "transformer.h.{layer}.attn"
#: inside eager_attention_forward (transformers 5): softmax's input is the masked scores,
#: its output the pattern that multiplies the values.
_SOFTMAX_OPS = ("attention_interface_1", "nn_functional_softmax_0")

GPT2 = Architecture(
    name="gpt2",
    model_types=("gpt2",),
    pre_block={
        "hook_embed": HookSite(Site("transformer.wte", "output", 0)),
        "hook_pos_embed": HookSite(Site("transformer.wpe", "output", 1), "expand_batch"),
    },
    block={
        "hook_resid_pre": HookSite(Site("transformer.h.{layer}", "input", 0)),
        "attn.hook_q": HookSite(Site(_ATTN + ".c_attn", "output", 1), "q"),
        "attn.hook_k": HookSite(Site(_ATTN + ".c_attn", "output", 1), "k"),
        "attn.hook_v": HookSite(Site(_ATTN + ".c_attn", "output", 1), "v"),
        "attn.hook_attn_scores": HookSite(Site(_ATTN, "input", 2, _SOFTMAX_OPS), "causal_scores"),
        "attn.hook_pattern": HookSite(Site(_ATTN, "output", 3, _SOFTMAX_OPS)),
        "attn.hook_z": HookSite(Site(_ATTN + ".c_proj", "input", 4), "heads"),
        "hook_attn_out": HookSite(Site(_ATTN + ".resid_dropout", "output", 5)),
        # the residual sum is no module's output: it is the assignment
        # ``hidden_states = attn_output + residual`` in GPT2Block.forward. (ln_2's input has the
        # same value, but an edit there would bypass the residual connection.)
        "hook_resid_mid": HookSite(Site("transformer.h.{layer}", "output", 6, ("hidden_states_1",))),
        "hook_mlp_out": HookSite(Site("transformer.h.{layer}.mlp", "output", 7)),
        "hook_resid_post": HookSite(Site("transformer.h.{layer}", "output", 8, tuple_index=0)),
    },
    post_block={
        # TL's hook_normalized is the LN output *before* its affine map: (out - b) / w
        "ln_final.hook_normalized": HookSite(Site("transformer.ln_f", "output", 0), "ln_affine"),
    },
    logits=Site("lm_head", "output", 1),
    weights=_gpt2_weights,
)



def _llama_weights(module: Any, cfg: Any) -> ModelWeights:
    """Llama weights in TransformerLens layout (as TL's ``convert_llama_weights``; grouped K/V
    heads repeated to every query head, as TL's ``W_K``/``W_V`` properties do)."""
    n_heads = int(cfg.num_attention_heads)
    d_model = int(cfg.hidden_size)
    d_head = llama_head_dim(cfg)
    n_kv = int(getattr(cfg, "num_key_value_heads", None) or n_heads)
    w_q: list[Tensor] = []
    w_k: list[Tensor] = []
    w_v: list[Tensor] = []
    w_o: list[Tensor] = []
    for block in module.model.layers:
        attn = block.self_attn
        w_q.append(attn.q_proj.weight.detach().reshape(n_heads, d_head, d_model).transpose(1, 2))
        for proj, dest in ((attn.k_proj, w_k), (attn.v_proj, w_v)):
            per_kv = proj.weight.detach().reshape(n_kv, d_head, d_model).transpose(1, 2)
            dest.append(per_kv.repeat_interleave(n_heads // n_kv, dim=0))
        # o_proj.weight is [d_model, H * d_head]
        w_o.append(attn.o_proj.weight.detach().T.reshape(n_heads, d_head, d_model))
    return ModelWeights(
        W_E=module.model.embed_tokens.weight.detach(),
        W_U=module.lm_head.weight.detach().T,
        W_Q=torch.stack(w_q),
        W_K=torch.stack(w_k),
        W_V=torch.stack(w_v),
        W_O=torch.stack(w_o),
    )


def llama_head_dim(cfg: Any) -> int:
    """``hidden_size // num_attention_heads``, the only head size TransformerLens's Llama uses."""
    d_head = int(cfg.hidden_size) // int(cfg.num_attention_heads)
    explicit = getattr(cfg, "head_dim", None)
    if explicit is not None and int(explicit) != d_head:
        raise UnsupportedModelError(
            f"Llama config with head_dim={explicit} != hidden_size / num_attention_heads = {d_head}: "
            "TransformerLens's canonical shapes assume the latter; mi-assert does not map this model"
        )
    return d_head


_LLAMA_LAYER = "model.layers.{layer}"
_LLAMA_ATTN = _LLAMA_LAYER + ".self_attn"

#: Llama-family decoders (``LlamaForCausalLM``, and Mistral and Qwen2, whose modules and forward
#: code transformers generates from Llama's): RMSNorm, rotary, gated MLP, grouped K/V heads.
#: hook_q/hook_k/hook_v are the projections before rotary (as TL's; ``hook_k``/``hook_v`` have
#: the key/value heads only, as TL's grouped-query attention); there is no hook_pos_embed.
LLAMA = Architecture(
    name="llama",
    model_types=("llama", "mistral", "qwen2"),
    pre_block={
        "hook_embed": HookSite(Site("model.embed_tokens", "output", 0)),
    },
    block={
        "hook_resid_pre": HookSite(Site(_LLAMA_LAYER, "input", 0)),
        "attn.hook_q": HookSite(Site(_LLAMA_ATTN + ".q_proj", "output", 1), "heads"),
        "attn.hook_k": HookSite(Site(_LLAMA_ATTN + ".k_proj", "output", 2), "heads"),
        "attn.hook_v": HookSite(Site(_LLAMA_ATTN + ".v_proj", "output", 3), "heads"),
        "attn.hook_attn_scores": HookSite(Site(_LLAMA_ATTN, "input", 4, _SOFTMAX_OPS), "causal_scores"),
        "attn.hook_pattern": HookSite(Site(_LLAMA_ATTN, "output", 5, _SOFTMAX_OPS)),
        "attn.hook_z": HookSite(Site(_LLAMA_ATTN + ".o_proj", "input", 6), "heads"),
        "hook_attn_out": HookSite(Site(_LLAMA_ATTN, "output", 7, tuple_index=0)),
        # ``hidden_states = residual + hidden_states`` after attention in LlamaDecoderLayer.forward
        "hook_resid_mid": HookSite(Site(_LLAMA_LAYER, "output", 8, ("hidden_states_1",))),
        "hook_mlp_out": HookSite(Site(_LLAMA_LAYER + ".mlp", "output", 9)),
        "hook_resid_post": HookSite(Site(_LLAMA_LAYER, "output", 10, tuple_index=0)),
    },
    post_block={
        # RMSNorm: TL's hook_normalized is x / rms, before the weight (no bias)
        "ln_final.hook_normalized": HookSite(Site("model.norm", "output", 0), "ln_affine"),
    },
    logits=Site("lm_head", "output", 1),
    weights=_llama_weights,
)



def _neox_weights(module: Any, cfg: Any) -> ModelWeights:
    """GPT-NeoX weights in TransformerLens layout (as TL's ``convert_neox_weights``: the fused
    projection's rows are ordered (head, q|k|v, d_head))."""
    n_heads = int(cfg.num_attention_heads)
    d_model = int(cfg.hidden_size)
    d_head = d_model // n_heads
    w_q: list[Tensor] = []
    w_k: list[Tensor] = []
    w_v: list[Tensor] = []
    w_o: list[Tensor] = []
    for block in module.gpt_neox.layers:
        fused = block.attention.query_key_value.weight.detach().reshape(n_heads, 3, d_head, d_model)
        for i, dest in enumerate((w_q, w_k, w_v)):
            dest.append(fused[:, i].transpose(1, 2))
        w_o.append(block.attention.dense.weight.detach().T.reshape(n_heads, d_head, d_model))
    return ModelWeights(
        W_E=module.gpt_neox.embed_in.weight.detach(),
        W_U=module.get_output_embeddings().weight.detach().T,
        W_Q=torch.stack(w_q),
        W_K=torch.stack(w_k),
        W_V=torch.stack(w_v),
        W_O=torch.stack(w_o),
    )


_NEOX_LAYER = "gpt_neox.layers.{layer}"
_NEOX_ATTN = _NEOX_LAYER + ".attention"

#: GPT-NeoX / Pythia: LayerNorm, partial rotary, one fused q/k/v projection per head, and
#: (``use_parallel_residual``, Pythia's default) attention and MLP in parallel: then there is no
#: hook_resid_mid. Sequential variants have it: the assignment ``attn_output = attn_output +
#: hidden_states`` in GPTNeoXLayer.forward.
NEOX = Architecture(
    name="gpt_neox",
    model_types=("gpt_neox",),
    pre_block={
        "hook_embed": HookSite(Site("gpt_neox.embed_in", "output", 0)),
    },
    block={
        "hook_resid_pre": HookSite(Site(_NEOX_LAYER, "input", 0)),
        "attn.hook_q": HookSite(Site(_NEOX_ATTN + ".query_key_value", "output", 1), "head_q"),
        "attn.hook_k": HookSite(Site(_NEOX_ATTN + ".query_key_value", "output", 1), "head_k"),
        "attn.hook_v": HookSite(Site(_NEOX_ATTN + ".query_key_value", "output", 1), "head_v"),
        "attn.hook_attn_scores": HookSite(Site(_NEOX_ATTN, "input", 2, _SOFTMAX_OPS), "causal_scores"),
        "attn.hook_pattern": HookSite(Site(_NEOX_ATTN, "output", 3, _SOFTMAX_OPS)),
        "attn.hook_z": HookSite(Site(_NEOX_ATTN + ".dense", "input", 4), "heads"),
        "hook_attn_out": HookSite(Site(_NEOX_LAYER + ".post_attention_dropout", "output", 5)),
        "hook_resid_mid": HookSite(Site(_NEOX_LAYER, "output", 6, ("attn_output_1",))),
        "hook_mlp_out": HookSite(Site(_NEOX_LAYER + ".post_mlp_dropout", "output", 7)),
        "hook_resid_post": HookSite(Site(_NEOX_LAYER, "output", 8, tuple_index=0)),
    },
    post_block={
        "ln_final.hook_normalized": HookSite(Site("gpt_neox.final_layer_norm", "output", 0), "ln_affine"),
    },
    logits=Site("lm_head", "output", 1),
    weights=_neox_weights,
    parallel_flag=("use_parallel_residual", True),
)

#: architecture name → table; HF ``model_type`` values are matched against ``model_types``
ARCHITECTURES: dict[str, Architecture] = {GPT2.name: GPT2, LLAMA.name: LLAMA, NEOX.name: NEOX}


def supported_model_types() -> list[str]:
    return sorted(t for arch in ARCHITECTURES.values() for t in arch.model_types)


def architecture_for(hf_config: Any, what: str = "model") -> Architecture:
    """The table for a Hugging Face config, or :class:`UnsupportedModelError`."""
    model_type = getattr(hf_config, "model_type", None)
    for arch in ARCHITECTURES.values():
        if model_type in arch.model_types:
            return arch
    raise UnsupportedModelError(
        f"{what} has Hugging Face model_type {model_type!r}, which the nnsight/bridge backends "
        f"of mi-assert do not map yet; supported model types: {', '.join(supported_model_types())}. "
        "Load it as a TransformerLens HookedTransformer instead if TransformerLens supports it, "
        "or add an Architecture entry in mi_assert/backends/architectures.py"
    )


# ----- views: site tensor <-> canonical tensor ------------------------------------------------
def to_canonical(view: View, value: Tensor, n_heads: int, batch: int,
                 affine: tuple[Tensor, Tensor] | None = None, d_head: int | None = None) -> Tensor:
    """Cut the canonical (TransformerLens-shaped) activation out of a site's tensor.

    ``affine`` is the (weight, bias) of the layer norm whose output is the site, for the
    ``ln_affine`` view. ``d_head`` (when given) sizes the ``heads`` view, so a projection with
    fewer heads (grouped key/value heads) splits into as many heads as it holds.
    """
    if view == "identity":
        return value
    if view == "ln_affine":
        assert affine is not None, "ln_affine view needs the layer norm's weight and bias"
        weight, bias = affine
        return (value - bias) / weight
    if view in ("q", "k", "v"):
        d_model = value.shape[-1] // 3
        part = torch.split(value, d_model, dim=-1)["qkv".index(view)]
        return part.reshape(*part.shape[:-1], n_heads, d_model // n_heads)
    if view in ("head_q", "head_k", "head_v"):
        per_head = value.reshape(*value.shape[:-1], n_heads, 3, value.shape[-1] // (3 * n_heads))
        return per_head[..., ("head_q", "head_k", "head_v").index(view), :]
    if view == "heads":
        if d_head is not None:
            return value.reshape(*value.shape[:-1], value.shape[-1] // d_head, d_head)
        return value.reshape(*value.shape[:-1], n_heads, value.shape[-1] // n_heads)
    if view == "expand_batch":
        return value.expand(batch, *value.shape[1:])
    if view == "causal_scores":
        # HF adds finfo.min where TL writes -inf; use TL's value so caches compare exactly
        q_len, k_len = value.shape[-2:]
        allowed = torch.ones(q_len, k_len, dtype=torch.bool, device=value.device).tril(k_len - q_len)
        return value.masked_fill(~allowed, float("-inf"))
    raise AssertionError(f"unknown view {view!r}")


def from_canonical(view: View, parts: dict[View, Tensor], original: Tensor,
                   affine: tuple[Tensor, Tensor] | None = None) -> Tensor:
    """Paste canonical tensors back into the site's layout (inverse of :func:`to_canonical`)."""
    if view == "ln_affine":
        assert affine is not None, "ln_affine view needs the layer norm's weight and bias"
        return parts[view] * affine[0] + affine[1]
    if view in ("q", "k", "v"):
        flat = [parts[v].flatten(-2) if v in parts else piece
                for v, piece in zip(_QKV, torch.split(original, original.shape[-1] // 3, dim=-1),
                                    strict=True)]
        return torch.cat(flat, dim=-1)
    if view in ("head_q", "head_k", "head_v"):
        some = next(parts[v] for v in _HEAD_QKV if v in parts)
        per_head = original.reshape(*original.shape[:-1], some.shape[-2], 3, some.shape[-1])
        pieces = [parts.get(v, per_head[..., i, :]) for i, v in enumerate(_HEAD_QKV)]
        return torch.stack(pieces, dim=-2).flatten(-3)
    value = parts[view]
    if view == "heads":
        return value.flatten(-2)
    return value
