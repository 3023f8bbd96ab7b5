"""A functional forward pass over TransformerLens-layout weights, for batched sweeps.

The sweeps stack many patched variants of one batch into a single batch and run the layers
after the patch once on the stack. That needs a forward pass that can start at any layer, run
a layer on part of a buffer, and stop at the one position a metric reads; TransformerLens's
``HookedTransformer.forward`` can do none of these without a Python hook per variant. This
module re-implements exactly the subset of TL configurations it can vouch for (``supported``
says which) and computes the same function in the same order of operations, so results agree
with TL to float32 rounding.

Covered: learned or rotary positions (GPT-J adjacent pairs or GPT-NeoX halves, partial
``rotary_dim``, TL's own sin/cos tables, so NTK-by-parts / YaRN / linear scaling come for free),
LayerNorm / RMSNorm (with or without weights), plain or gated MLPs, grouped-query attention and
parallel attention + MLP blocks, local attention whose window spans ``n_ctx``: GPT-2, Llama,
Mistral, Qwen2, Gemma 1, Pythia, GPT-J.
"""

from __future__ import annotations

import dataclasses
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from mi_assert.cost import count_forward

#: TL ``act_fn`` name -> elementwise function (the tanh forms agree with TL's to ~1e-7).
_ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "gelu_new": lambda x: F.gelu(x, approximate="tanh"),
    "gelu_fast": lambda x: F.gelu(x, approximate="tanh"),
    "gelu_pytorch_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "gelu": F.gelu,
    "relu": F.relu,
    "silu": F.silu,
}

#: config flags that must hold their default (falsy) value for the functional forward to be exact.
_FLAGS_MUST_BE_OFF = (
    "use_qk_norm", "use_logn_attn",
    "scale_attn_by_inverse_layer_idx", "use_normalization_before_and_after",
    "use_attention_sinks", "post_embedding_ln", "load_in_4bit", "use_split_qkv_input",
    "use_attn_in", "use_dynamic_ntk_rope",
)

#: architectures whose blocks TL runs post-norm (norm after the sub-layer, before the add)
_POST_NORM_FALLBACK = frozenset({"Olmo2ForCausalLM", "Olmo3ForCausalLM"})


def _post_norm_architectures() -> frozenset[str]:
    try:
        from transformer_lens.utilities.architectures import POST_NORM_ARCHITECTURES
    except ImportError:  # older TL: the list it had then
        return _POST_NORM_FALLBACK
    return frozenset(POST_NORM_ARCHITECTURES) | _POST_NORM_FALLBACK


def unsupported_reason(model: Any) -> str | None:
    """Why the functional forward cannot reproduce ``model`` (None when it can)."""
    cfg = getattr(model, "cfg", None)
    if cfg is None or not hasattr(model, "blocks"):
        return "not a HookedTransformer"
    if cfg.positional_embedding_type not in ("standard", "rotary"):
        return f"positional_embedding_type={cfg.positional_embedding_type!r}"
    if cfg.normalization_type not in (None, "LN", "LNPre", "RMS", "RMSPre"):
        return f"normalization_type={cfg.normalization_type!r}"
    if not cfg.attn_only and cfg.act_fn not in _ACTIVATIONS:
        return f"act_fn={cfg.act_fn!r}"
    if cfg.attention_dir != "causal":
        return f"attention_dir={cfg.attention_dir!r}"
    for flag in _FLAGS_MUST_BE_OFF:
        if getattr(cfg, flag, False):
            return f"{flag}=True"
    if getattr(cfg, "final_rms", False) and cfg.normalization_type in ("LN", "LNPre"):
        # an RMS final norm after LayerNorm blocks; with RMS blocks (Llama's TL config sets
        # final_rms) the final norm is RMS either way
        return f"final_rms=True with normalization_type={cfg.normalization_type!r}"
    if getattr(cfg, "use_local_attn", False):
        # a window that spans n_ctx never masks anything (Mistral-7B-v0.1 in TL: 4096 vs 2048)
        window = getattr(cfg, "window_size", None)
        if not isinstance(window, int) or window < cfg.n_ctx:
            return (f"use_local_attn=True with window_size={window} < n_ctx={cfg.n_ctx} "
                    "(sliding-window attention)")
    n_kv = getattr(cfg, "n_key_value_heads", None)
    if n_kv is not None and (n_kv <= 0 or cfg.n_heads % n_kv):
        return f"n_key_value_heads={n_kv} does not divide n_heads={cfg.n_heads}"
    if cfg.positional_embedding_type == "rotary":
        rotary_dim = cfg.rotary_dim
        if rotary_dim is None or rotary_dim % 2 or not 0 < rotary_dim <= cfg.d_head:
            return f"rotary_dim={rotary_dim} (needs an even value in (0, d_head={cfg.d_head}])"
        attn = model.blocks[0].attn
        if not isinstance(getattr(attn, "rotary_sin", None), Tensor):
            return "rotary model without TL's rotary_sin/rotary_cos tables"
    if cfg.original_architecture in _post_norm_architectures():
        return f"post-norm architecture {cfg.original_architecture}"
    if getattr(cfg, "num_experts", None):
        return "mixture of experts"
    if getattr(cfg, "clip_qkv", None) is not None:
        return "clip_qkv"
    for cap in ("attn_scores_soft_cap", "output_logits_soft_cap"):
        if (getattr(cfg, cap, -1.0) or -1.0) > 0:
            return cap
    if cfg.original_architecture in ("OlmoeForCausalLM", "Olmo2ForCausalLM", "Olmo3ForCausalLM"):
        return "QK-norm architecture"
    dtype = next(model.parameters()).dtype
    if dtype not in (torch.float32, torch.float64):
        return f"dtype={dtype} (TL upcasts inside layer norm; use precision= for fast numerics)"
    for name, hook_point in getattr(model, "hook_dict", {}).items():
        if getattr(hook_point, "_forward_hooks", None) or getattr(hook_point, "fwd_hooks", None):
            return f"a hook is attached at {name}"
    return None


@dataclass
class LayerWeights:
    """One block's weights, fused for batched matmuls (``W_qkv`` is ``[d_model, (H + 2*KV)*d_head]``:
    the query heads, then the key/value heads, ``KV`` of each: fewer than ``H`` under GQA)."""

    ln1: tuple[Tensor, ...] | None  # LN: (w, b); RMS: (w,); None: no weights
    ln2: tuple[Tensor, ...] | None
    W_qkv: Tensor
    b_qkv: Tensor
    W_O: Tensor  # [H, d_head, d_model] (per-head rank updates)
    W_O_flat: Tensor  # [H*d_head, d_model]
    b_O: Tensor
    W_in: Tensor | None
    b_in: Tensor | None
    W_out: Tensor | None
    b_out: Tensor | None
    #: gated MLPs: ``post = act(h @ W_gate) * (h @ W_in) + b_in`` (TL's ``GatedMLP``)
    W_gate: Tensor | None = None
    #: rotary models: TL's ``(sin, cos)`` tables ``[rows, rotary_dim]`` for this layer
    rotary: tuple[Tensor, Tensor] | None = None


@dataclass
class FunctionalModel:
    """TL-layout weights plus the config the functional forward needs."""

    layers: list[LayerWeights]
    W_E: Tensor
    W_pos: Tensor | None  # None: rotary positions (nothing is added to the embedding)
    ln_final: tuple[Tensor, ...] | None
    W_U: Tensor
    b_U: Tensor
    n_heads: int
    d_head: int
    attn_scale: float
    normalize: bool  # LN / LNPre / RMS / RMSPre (True) or no normalisation (False)
    eps: float
    act: Callable[[Tensor], Tensor] | None
    #: fused kernels (``F.layer_norm``; the activation in the MLP GEMM's epilogue where that
    #: computes the same function) instead of TL's op order: equal to float32 rounding, not
    #: bit for bit. Off for the sweeps, which promise TL's order; on for the CE splice.
    fused: bool = False
    #: RMS / RMSPre: scale by the root mean square, no centering (LN / LNPre otherwise)
    rms: bool = False
    #: key/value heads (``n_heads`` without GQA; each serves ``n_heads // n_kv_heads`` queries)
    n_kv_heads: int | None = None
    rotary_dim: int = 0
    #: GPT-J style rotary (rotate adjacent pairs) instead of GPT-NeoX's halves
    rotary_adjacent: bool = False
    #: GPT-J / GPT-NeoX blocks: attention and MLP both read ``resid_pre``; no ``resid_mid``
    parallel: bool = False

    @property
    def kv_heads(self) -> int:
        return self.n_heads if self.n_kv_heads is None else self.n_kv_heads

    @property
    def n_layers(self) -> int:
        return len(self.layers)

    @property
    def d_model(self) -> int:
        return int(self.W_E.shape[1])

    @property
    def d_mlp(self) -> int:
        first = self.layers[0].W_in
        return 0 if first is None else int(first.shape[1])

    @property
    def d_vocab(self) -> int:
        return int(self.W_U.shape[1])

    # ----- pieces -------------------------------------------------------------------------
    def norm(self, x: Tensor, wb: tuple[Tensor, ...] | None) -> Tensor:
        """TL's LayerNorm / LayerNormPre / RMSNorm / RMSNormPre, same order of operations;
        identity without normalisation."""
        if not self.normalize:
            return x
        if self.rms:
            return self._rms_norm(x, wb)
        if self.fused:
            w, b = (None, None) if wb is None else wb
            return F.layer_norm(x, x.shape[-1:], w, b, self.eps)
        x = x - x.mean(-1, keepdim=True)
        scale = (x.pow(2).mean(-1, keepdim=True) + self.eps).sqrt()
        x = x / scale
        if wb is None:
            return x
        return x * wb[0] + wb[1]

    def _rms_norm(self, x: Tensor, wb: tuple[Tensor, ...] | None) -> Tensor:
        w = None if wb is None else wb[0]
        if self.fused and hasattr(F, "rms_norm"):
            return F.rms_norm(x, x.shape[-1:], w, self.eps)
        scale = (x.pow(2).mean(-1, keepdim=True) + self.eps).sqrt()
        x = x / scale
        return x if w is None else x * w

    def embed(self, tokens: Tensor) -> Tensor:
        """``hook_resid_pre`` of layer 0: token plus learned position embedding (rotary models:
        the token embedding alone)."""
        if self.W_pos is None:
            return self.W_E[tokens]
        return self.W_E[tokens] + self.W_pos[: tokens.shape[-1]]

    def qkv(self, layer: int, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """q ``[N, H, T, d_head]`` and k, v ``[N, KV, T, d_head]`` from the residual ``x``
        ``[N, T, d_model]``; q and k rotated on rotary models (positions 0..T-1)."""
        w = self.layers[layer]
        h = self.norm(x, w.ln1)
        qkv = torch.addmm(w.b_qkv, h.reshape(-1, h.shape[-1]), w.W_qkv)
        n_kv = self.kv_heads
        if n_kv == self.n_heads:
            qkv = qkv.view(x.shape[0], x.shape[1], 3, self.n_heads, self.d_head)
            q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        else:
            heads = qkv.view(x.shape[0], x.shape[1], self.n_heads + 2 * n_kv, self.d_head)
            q, k, v = heads.transpose(1, 2).split([self.n_heads, n_kv, n_kv], dim=1)
        if w.rotary is not None:
            q, k = self.rotate(q, w.rotary), self.rotate(k, w.rotary)
        return q, k, v

    def rotate(self, x: Tensor, table: tuple[Tensor, Tensor]) -> Tensor:
        """TL's ``apply_rotary`` on ``[N, heads, T, d_head]``: the first ``rotary_dim`` features
        rotated by position, ``x_rot * cos + rotate_every_two(x_rot) * sin``, the rest passed."""
        sin, cos = table
        n_pos, rd = x.shape[-2], self.rotary_dim
        x_rot, x_pass = x[..., :rd], x[..., rd:]
        if self.rotary_adjacent:  # GPT-J: [x0, x1] -> [-x1, x0] for each adjacent pair
            flip = torch.stack((-x_rot[..., 1::2], x_rot[..., ::2]), dim=-1).flatten(-2)
        else:  # GPT-NeoX: halves
            half = rd // 2
            flip = torch.cat((-x_rot[..., half:], x_rot[..., :half]), dim=-1)
        rotated = x_rot * cos[:n_pos] + flip * sin[:n_pos]
        if rd == x.shape[-1]:
            return rotated
        return torch.cat((rotated, x_pass), dim=-1)

    def attend(self, q: Tensor, k: Tensor, v: Tensor, causal: bool) -> Tensor:
        """z ``[N, Tq, H, d_head]``: softmax(q k^T / scale) v with TL's causal mask.

        ``causal=False`` is only used when every query sits at or after every key (queries at the
        last kept position), where the causal mask is all-visible. Under GQA each key/value head
        serves ``H // KV`` consecutive query heads (TL's ``repeat_interleave``); expanding k and v
        explicitly keeps every SDPA backend available (``enable_gqa`` is not in torch < 2.5).
        """
        repeats = self.n_heads // k.shape[1]
        if repeats > 1:
            k = k.repeat_interleave(repeats, dim=1)
            v = v.repeat_interleave(repeats, dim=1)
        z = F.scaled_dot_product_attention(q, k, v, is_causal=causal, scale=1.0 / self.attn_scale)
        return z.transpose(1, 2)

    def attn_out(self, layer: int, z: Tensor) -> Tensor:
        """``hook_attn_out`` from z ``[N, T, H, d_head]``."""
        w = self.layers[layer]
        flat = z.reshape(-1, self.n_heads * self.d_head)
        out = torch.addmm(w.b_O, flat, w.W_O_flat)
        return out.view(*z.shape[:-2], -1)

    def mlp_out(self, layer: int, x: Tensor) -> Tensor:
        """``hook_mlp_out`` from ``resid_mid`` (any leading shape); zero-cost None for attn-only."""
        w = self.layers[layer]
        assert w.W_in is not None and w.b_in is not None and w.W_out is not None and w.b_out is not None
        assert self.act is not None
        h = self.norm(x, w.ln2).reshape(-1, x.shape[-1])
        if w.W_gate is not None:
            # TL's order: act(gate) * linear, then the bias (b_in sits after the product)
            post = self.act(h @ w.W_gate) * (h @ w.W_in) + w.b_in
        elif self.fused and gelu_epilogue_matches(self.act, h.device, h.dtype):
            post = torch._addmm_activation(w.b_in, h, w.W_in, use_gelu=True)
        else:
            post = self.act(torch.addmm(w.b_in, h, w.W_in))
        return torch.addmm(w.b_out, post, w.W_out).view(x.shape)

    @property
    def has_mlp(self) -> bool:
        return self.layers[0].W_in is not None

    def logits(self, x: Tensor) -> Tensor:
        """Unembed a final residual of any leading shape: ``[..., d_vocab]``."""
        h = self.norm(x, self.ln_final)
        flat = torch.addmm(self.b_U, h.reshape(-1, h.shape[-1]), self.W_U)
        return flat.view(*x.shape[:-1], -1)

    # ----- whole sub-layers ---------------------------------------------------------------
    def attn_block_out(self, layer: int, x: Tensor) -> Tensor:
        """``hook_attn_out`` ``[N, T, d_model]`` of ``layer`` from its ``resid_pre``."""
        q, k, v = self.qkv(layer, x)
        return self.attn_out(layer, self.attend(q, k, v, causal=True))

    def attn_block_out_last(self, layer: int, x: Tensor) -> Tensor:
        """``hook_attn_out`` at the last position only (``[N, d_model]``): one query row."""
        q, k, v = self.qkv(layer, x)
        z = self.attend(q[:, :, -1:], k, v, causal=False)
        return self.attn_out(layer, z)[:, 0]

    def block(self, layer: int, x: Tensor) -> Tensor:
        """``resid_post`` of ``layer`` from its ``resid_pre`` ``[N, T, d_model]``."""
        if self.parallel and self.has_mlp:
            mlp = self.mlp_out(layer, x)
            return x + self.attn_block_out(layer, x) + mlp
        x = x + self.attn_block_out(layer, x)
        if self.has_mlp:
            x = x + self.mlp_out(layer, x)
        return x

    def cast(self, dtype: torch.dtype) -> FunctionalModel:
        """A copy with every weight in ``dtype`` (opt-in bf16 numerics)."""

        def c(t: Any) -> Any:
            if t is None:
                return None
            if isinstance(t, tuple):
                return tuple(c(u) for u in t)
            return t.to(dtype)

        layers = [LayerWeights(**{k: c(v) for k, v in vars(lw).items()}) for lw in self.layers]
        return dataclasses.replace(self, layers=layers, W_E=c(self.W_E), W_pos=c(self.W_pos),
                                   ln_final=c(self.ln_final), W_U=c(self.W_U), b_U=c(self.b_U))


_GELU_EPILOGUE_OK: dict[tuple[Any, str, torch.dtype], bool] = {}


def gelu_epilogue_matches(act: Callable[[Tensor], Tensor] | None, device: torch.device,
                          dtype: torch.dtype) -> bool:
    """Whether ``torch._addmm_activation(..., use_gelu=True)`` computes ``act`` on ``device``.

    Which GELU the epilogue applies depends on the backend (cuBLASLt and PyTorch's CUDA
    fallback use the tanh form, the CPU path the erf form), so it is probed once per
    (activation, device type, dtype) against the activation itself.
    """
    if act is None:
        return False
    key = (act, device.type, dtype)
    if key not in _GELU_EPILOGUE_OK:
        gen = torch.Generator().manual_seed(0)
        a, b, bias = (torch.randn(*shape, generator=gen).to(device=device, dtype=dtype)
                      for shape in ((64, 96), (96, 160), (160,)))
        fused = torch._addmm_activation(bias, a, b, use_gelu=True)
        _GELU_EPILOGUE_OK[key] = bool(torch.allclose(fused, act(torch.addmm(bias, a, b)),
                                                     rtol=1e-4, atol=1e-5))
    return _GELU_EPILOGUE_OK[key]


def _ln_params(module: Any) -> tuple[Tensor, ...] | None:
    w = getattr(module, "w", None)
    b = getattr(module, "b", None)
    if w is None or b is None:
        return None
    return w.detach(), b.detach()


def _params_key(model: Any) -> tuple[Any, ...]:
    """Changes whenever a parameter is replaced or edited in place (cache invalidation)."""
    return tuple((p.data_ptr(), p._version, p.dtype, p.device) for p in model.parameters())


#: per model object: (weight-version key, fused weights); weak, so a dropped model frees them
_FUNCTIONAL: weakref.WeakKeyDictionary[Any, tuple[tuple[Any, ...], FunctionalModel]] = (
    weakref.WeakKeyDictionary())


def functional_key(model: Any) -> tuple[Any, ...] | None:
    """The weight-version key the cached fused weights of ``model`` were built for."""
    cached = _FUNCTIONAL.get(model)
    return None if cached is None else cached[0]


def functional_model(model: Any) -> FunctionalModel:
    """Fused TL-layout weights of a supported ``HookedTransformer`` (cached until weights change)."""
    key = _params_key(model)
    cached = _FUNCTIONAL.get(model)
    if cached is not None and cached[0] == key:
        return cached[1]
    cfg = model.cfg
    norm_type = cfg.normalization_type
    # LN and RMS carry weights (LN also a bias); LNPre / RMSPre / None carry none
    norm_params = _ln_params if norm_type == "LN" else _rms_params if norm_type == "RMS" else None
    n_kv = getattr(cfg, "n_key_value_heads", None)
    rotary = cfg.positional_embedding_type == "rotary"
    layers: list[LayerWeights] = []
    previous_table: tuple[Tensor, Tensor, tuple[Tensor, Tensor]] | None = None
    for block in model.blocks:
        attn = block.attn
        n_heads, d_model, d_head = attn.W_Q.shape
        # GQA keeps k/v at KV heads (TL's ``_W_K``); ``W_K`` would repeat them H // KV times
        W_K, b_K, W_V, b_V = ((attn._W_K, attn._b_K, attn._W_V, attn._b_V) if n_kv is not None
                              else (attn.W_K, attn.b_K, attn.W_V, attn.b_V))
        W_qkv = torch.cat(
            [w.detach().permute(1, 0, 2).reshape(d_model, -1) for w in (attn.W_Q, W_K, W_V)],
            dim=1).contiguous()
        b_qkv = torch.cat([b.detach().reshape(-1) for b in (attn.b_Q, b_K, b_V)])
        W_O = attn.W_O.detach()
        mlp = None if cfg.attn_only else block.mlp
        table = None
        if rotary:
            table = _rotary_table(attn, cfg, previous_table)
            previous_table = (attn.rotary_sin, attn.rotary_cos, table)
        layers.append(LayerWeights(
            ln1=None if norm_params is None else norm_params(block.ln1),
            ln2=None if norm_params is None or mlp is None else norm_params(block.ln2),
            W_qkv=W_qkv, b_qkv=b_qkv, W_O=W_O.contiguous(),
            W_O_flat=W_O.reshape(n_heads * d_head, -1).contiguous(), b_O=attn.b_O.detach(),
            W_in=None if mlp is None else mlp.W_in.detach(),
            b_in=None if mlp is None else mlp.b_in.detach(),
            W_out=None if mlp is None else mlp.W_out.detach(),
            b_out=None if mlp is None else mlp.b_out.detach(),
            W_gate=mlp.W_gate.detach() if mlp is not None and cfg.gated_mlp else None,
            rotary=table,
        ))
    attn_scale = float(cfg.attn_scale) if cfg.use_attn_scale else 1.0
    fm = FunctionalModel(
        layers=layers,
        W_E=model.embed.W_E.detach(),
        W_pos=None if rotary else model.pos_embed.W_pos.detach(),
        ln_final=None if norm_params is None else norm_params(model.ln_final),
        W_U=model.unembed.W_U.detach(),
        b_U=model.unembed.b_U.detach(),
        n_heads=int(cfg.n_heads),
        d_head=int(cfg.d_head),
        attn_scale=attn_scale,
        normalize=norm_type is not None,
        eps=float(cfg.eps),
        act=None if cfg.attn_only else _ACTIVATIONS[cfg.act_fn],
        rms=norm_type in ("RMS", "RMSPre"),
        n_kv_heads=None if n_kv is None else int(n_kv),
        rotary_dim=int(cfg.rotary_dim) if rotary else 0,
        rotary_adjacent=bool(getattr(cfg, "rotary_adjacent_pairs", False)) if rotary else False,
        parallel=bool(cfg.parallel_attn_mlp) and not cfg.attn_only,
    )
    _FUNCTIONAL[model] = (key, fm)
    return fm


def _rms_params(module: Any) -> tuple[Tensor, ...] | None:
    w = getattr(module, "w", None)
    return None if w is None else (w.detach(),)


def _rotary_table(attn: Any, cfg: Any, previous: tuple[Tensor, Tensor, tuple[Tensor, Tensor]] | None
                  ) -> tuple[Tensor, Tensor]:
    """TL's own ``(sin, cos)`` for ``attn``, covering ``n_ctx`` positions.

    TL keeps the first ``min(n_ctx, 2048)`` rows and computes more on demand with its own
    ``calculate_sin_cos_rotary`` (which bakes in NTK-by-parts, YaRN and linear scaling); the
    missing rows are computed the same way here, once. Layers whose tables are equal share one
    extended copy (``previous``: the last layer's buffers and table).
    """
    sin, cos = attn.rotary_sin.detach(), attn.rotary_cos.detach()
    rows = sin.shape[0]
    if rows >= cfg.n_ctx:
        return sin, cos
    if previous is not None and torch.equal(previous[0], sin) and torch.equal(previous[1], cos):
        return previous[2]
    more_sin, more_cos = attn.calculate_sin_cos_rotary(
        cfg.rotary_dim, cfg.n_ctx, base=attn._rotary_base(), dtype=cfg.dtype)
    return (torch.cat([sin, more_sin[rows:].to(sin)]), torch.cat([cos, more_cos[rows:].to(cos)]))


@dataclass
class RunCache:
    """What a sweep needs from one unpatched run: only the named activations, per layer."""

    resid_pre: list[Tensor]  # [B, T, d_model] per layer (only when asked)
    #: [B, T, d_model] per layer (only when asked): the residual once the attention output is in,
    #: where a head patch enters: ``resid_mid``, or on parallel-block models (which have none,
    #: their MLP reads ``resid_pre``, which a head patch leaves alone) ``resid_post``
    resid_mid: list[Tensor]
    z: list[Tensor]  # [B, T, H, d_head] per layer (only when asked)


def run_and_cache(
    fm: FunctionalModel,
    tokens: Tensor,
    upto_layer: int,
    want_resid_pre: bool = False,
    want_resid_mid: bool = False,
    want_z: bool = False,
) -> RunCache:
    """Run layers ``0..upto_layer-1`` and keep only the requested activations (memory-lean)."""
    count_forward(int(tokens.shape[0]))
    x = fm.embed(tokens)
    cache = RunCache(resid_pre=[], resid_mid=[], z=[])
    for layer in range(upto_layer):
        if want_resid_pre:
            cache.resid_pre.append(x)
        q, k, v = fm.qkv(layer, x)
        z = fm.attend(q, k, v, causal=True)
        if want_z:
            cache.z.append(z)
        if fm.parallel:
            # the last MLP feeds nothing cached unless the head-patch residual is asked for
            mlp = fm.mlp_out(layer, x) if want_resid_mid or layer + 1 < upto_layer else None
            x = x + fm.attn_out(layer, z)
            if mlp is not None:
                x = x + mlp
            if want_resid_mid:
                cache.resid_mid.append(x)
            continue
        x = x + fm.attn_out(layer, z)
        if want_resid_mid:
            cache.resid_mid.append(x)
        if fm.has_mlp and layer + 1 < upto_layer:  # the last MLP feeds nothing cached
            x = x + fm.mlp_out(layer, x)
    return cache


def full_logits(fm: FunctionalModel, tokens: Tensor) -> Tensor:
    """Logits ``[B, T, d_vocab]`` of an unpatched run (self-check and baselines)."""
    x = fm.embed(tokens)
    for layer in range(fm.n_layers):
        x = fm.block(layer, x)
    return fm.logits(x)
