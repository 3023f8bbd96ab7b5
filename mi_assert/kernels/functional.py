"""A functional forward pass over TransformerLens-layout weights, for batched sweeps.

The sweeps stack many patched variants of one batch into a single batch and run the layers
after the patch once on the stack. That needs a forward pass that can start at any layer, run
a layer on part of a buffer, and stop at the one position a metric reads; TransformerLens's
``HookedTransformer.forward`` can do none of these without a Python hook per variant. This
module re-implements exactly the subset of TL configurations it can vouch for (``supported``
says which) and computes the same function in the same order of operations, so results agree
with TL to float32 rounding.
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
    "gated_mlp", "parallel_attn_mlp", "use_local_attn", "use_qk_norm", "use_logn_attn",
    "scale_attn_by_inverse_layer_idx", "final_rms", "use_normalization_before_and_after",
    "use_attention_sinks", "post_embedding_ln", "load_in_4bit", "use_split_qkv_input",
    "use_attn_in", "use_dynamic_ntk_rope", "use_yarn_rope",
)


def unsupported_reason(model: Any) -> str | None:
    """Why the functional forward cannot reproduce ``model`` (None when it can)."""
    cfg = getattr(model, "cfg", None)
    if cfg is None or not hasattr(model, "blocks"):
        return "not a HookedTransformer"
    if cfg.positional_embedding_type != "standard":
        return f"positional_embedding_type={cfg.positional_embedding_type!r}"
    if cfg.normalization_type not in (None, "LN", "LNPre"):
        return f"normalization_type={cfg.normalization_type!r}"
    if not cfg.attn_only and cfg.act_fn not in _ACTIVATIONS:
        return f"act_fn={cfg.act_fn!r}"
    if cfg.attention_dir != "causal":
        return f"attention_dir={cfg.attention_dir!r}"
    for flag in _FLAGS_MUST_BE_OFF:
        if getattr(cfg, flag, False):
            return f"{flag}=True"
    if getattr(cfg, "n_key_value_heads", None) not in (None, cfg.n_heads):
        return "grouped-query attention"
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
    """One block's weights, fused for batched matmuls (``W_qkv`` is ``[d_model, 3*H*d_head]``)."""

    ln1: tuple[Tensor, Tensor] | None
    ln2: tuple[Tensor, Tensor] | None
    W_qkv: Tensor
    b_qkv: Tensor
    W_O: Tensor  # [H, d_head, d_model] (per-head rank updates)
    W_O_flat: Tensor  # [H*d_head, d_model]
    b_O: Tensor
    W_in: Tensor | None
    b_in: Tensor | None
    W_out: Tensor | None
    b_out: Tensor | None


@dataclass
class FunctionalModel:
    """TL-layout weights plus the config the functional forward needs."""

    layers: list[LayerWeights]
    W_E: Tensor
    W_pos: Tensor
    ln_final: tuple[Tensor, Tensor] | None
    W_U: Tensor
    b_U: Tensor
    n_heads: int
    d_head: int
    attn_scale: float
    normalize: bool  # LN / LNPre (True) or no normalisation (False)
    eps: float
    act: Callable[[Tensor], Tensor] | None
    #: fused kernels (``F.layer_norm``; the activation in the MLP GEMM's epilogue where that
    #: computes the same function) instead of TL's op order: equal to float32 rounding, not
    #: bit for bit. Off for the sweeps, which promise TL's order; on for the CE splice.
    fused: bool = False

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
    def norm(self, x: Tensor, wb: tuple[Tensor, Tensor] | None) -> Tensor:
        """TL's LayerNorm / LayerNormPre, same order of operations; identity without LN."""
        if not self.normalize:
            return x
        if self.fused:
            w, b = (None, None) if wb is None else wb
            return F.layer_norm(x, x.shape[-1:], w, b, self.eps)
        x = x - x.mean(-1, keepdim=True)
        scale = (x.pow(2).mean(-1, keepdim=True) + self.eps).sqrt()
        x = x / scale
        if wb is None:
            return x
        return x * wb[0] + wb[1]

    def embed(self, tokens: Tensor) -> Tensor:
        """``hook_resid_pre`` of layer 0: token plus learned position embedding."""
        return self.W_E[tokens] + self.W_pos[: tokens.shape[-1]]

    def qkv(self, layer: int, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """q, k, v as ``[N, H, T, d_head]`` from the residual ``x`` ``[N, T, d_model]``."""
        w = self.layers[layer]
        h = self.norm(x, w.ln1)
        qkv = torch.addmm(w.b_qkv, h.reshape(-1, h.shape[-1]), w.W_qkv)
        qkv = qkv.view(x.shape[0], x.shape[1], 3, self.n_heads, self.d_head)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        return q, k, v

    def attend(self, q: Tensor, k: Tensor, v: Tensor, causal: bool) -> Tensor:
        """z ``[N, Tq, H, d_head]``: softmax(q k^T / scale) v with TL's causal mask.

        ``causal=False`` is only used when every query sits at or after every key (queries at the
        last kept position), where the causal mask is all-visible.
        """
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
        if self.fused and gelu_epilogue_matches(self.act, h.device, h.dtype):
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


def _ln_params(module: Any) -> tuple[Tensor, Tensor] | None:
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
    layers: list[LayerWeights] = []
    for block in model.blocks:
        attn = block.attn
        n_heads, d_model, d_head = attn.W_Q.shape
        W_qkv = torch.cat(
            [w.detach().permute(1, 0, 2).reshape(d_model, n_heads * d_head)
             for w in (attn.W_Q, attn.W_K, attn.W_V)], dim=1).contiguous()
        b_qkv = torch.cat([b.detach().reshape(-1) for b in (attn.b_Q, attn.b_K, attn.b_V)])
        W_O = attn.W_O.detach()
        mlp = None if cfg.attn_only else block.mlp
        layers.append(LayerWeights(
            ln1=_ln_params(block.ln1) if cfg.normalization_type == "LN" else None,
            ln2=_ln_params(block.ln2) if cfg.normalization_type == "LN" and mlp is not None else None,
            W_qkv=W_qkv, b_qkv=b_qkv, W_O=W_O.contiguous(),
            W_O_flat=W_O.reshape(n_heads * d_head, -1).contiguous(), b_O=attn.b_O.detach(),
            W_in=None if mlp is None else mlp.W_in.detach(),
            b_in=None if mlp is None else mlp.b_in.detach(),
            W_out=None if mlp is None else mlp.W_out.detach(),
            b_out=None if mlp is None else mlp.b_out.detach(),
        ))
    attn_scale = float(cfg.attn_scale) if cfg.use_attn_scale else 1.0
    fm = FunctionalModel(
        layers=layers,
        W_E=model.embed.W_E.detach(),
        W_pos=model.pos_embed.W_pos.detach(),
        ln_final=_ln_params(model.ln_final) if cfg.normalization_type == "LN" else None,
        W_U=model.unembed.W_U.detach(),
        b_U=model.unembed.b_U.detach(),
        n_heads=int(cfg.n_heads),
        d_head=int(cfg.d_head),
        attn_scale=attn_scale,
        normalize=cfg.normalization_type is not None,
        eps=float(cfg.eps),
        act=None if cfg.attn_only else _ACTIVATIONS[cfg.act_fn],
    )
    _FUNCTIONAL[model] = (key, fm)
    return fm


@dataclass
class RunCache:
    """What a sweep needs from one unpatched run: only the named activations, per layer."""

    resid_pre: list[Tensor]  # [B, T, d_model] per layer (only when asked)
    resid_mid: list[Tensor]  # [B, T, d_model] per layer (only when asked)
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
