"""A plain-torch twin of the TransformerLens ``HookedTransformer`` used for zoo training.

Training goes through this module instead of ``HookedTransformer`` for two reasons: it has no
hook-point overhead (a tiny model's step is dominated by per-module overhead), and it imports
only torch, so the training loop runs anywhere torch does. Parameters carry TransformerLens
state-dict names and shapes, so :meth:`TLTwin.tl_state_dict` loads straight into a
``HookedTransformer`` built from the same config; ``tests/zoo`` checks that both give the
same logits. Supported configs: LN pre-norm, learned absolute positions, ``attn_only`` or
GELU MLPs, default attention scale ``sqrt(d_head)``, TransformerLens's "gpt2" init.
"""

from __future__ import annotations

import math
from typing import Any, cast

import torch
from torch import Tensor, nn

SUPPORTED_ACT_FNS = ("gelu",)


def _ln(x: Tensor, w: Tensor, b: Tensor, eps: float) -> Tensor:
    x = x - x.mean(-1, keepdim=True)
    scale = (x.pow(2).mean(-1, keepdim=True) + eps).sqrt()
    return x / scale * w + b


class TLTwin(nn.Module):
    """Same maths and parameter names as ``HookedTransformer(HookedTransformerConfig(**cfg))``."""

    causal: Tensor  # registered buffer: the [n_ctx, n_ctx] lower-triangular attention mask

    def __init__(self, cfg: dict[str, Any]) -> None:
        super().__init__()
        self.cfg = dict(cfg)
        if cfg.get("normalization_type", "LN") != "LN" or cfg.get("positional_embedding_type", "standard") != "standard":
            raise ValueError("TLTwin supports normalization_type='LN' and standard positions only")
        self.attn_only = bool(cfg.get("attn_only", False))
        if not self.attn_only and cfg.get("act_fn") not in SUPPORTED_ACT_FNS:
            raise ValueError(f"TLTwin supports act_fn in {SUPPORTED_ACT_FNS}")
        self.n_layers, self.d_model = cfg["n_layers"], cfg["d_model"]
        self.n_heads, self.d_head = cfg["n_heads"], cfg["d_head"]
        self.d_vocab, self.n_ctx = cfg["d_vocab"], cfg["n_ctx"]
        self.eps = float(cfg.get("eps", 1e-5))
        d_mlp = cfg.get("d_mlp") or 4 * self.d_model
        shapes: dict[str, tuple[int, ...]] = {
            "embed.W_E": (self.d_vocab, self.d_model),
            "pos_embed.W_pos": (self.n_ctx, self.d_model),
        }
        for layer in range(self.n_layers):
            p = f"blocks.{layer}."
            shapes.update({
                p + "ln1.w": (self.d_model,), p + "ln1.b": (self.d_model,),
                # TransformerLens's parameter order (W_Q, W_O, W_K, W_V): the init draws
                # follow it, so a seed gives the same initial weights as HookedTransformer
                p + "attn.W_Q": (self.n_heads, self.d_model, self.d_head),
                p + "attn.W_O": (self.n_heads, self.d_head, self.d_model),
                p + "attn.W_K": (self.n_heads, self.d_model, self.d_head),
                p + "attn.W_V": (self.n_heads, self.d_model, self.d_head),
                p + "attn.b_Q": (self.n_heads, self.d_head), p + "attn.b_K": (self.n_heads, self.d_head),
                p + "attn.b_V": (self.n_heads, self.d_head), p + "attn.b_O": (self.d_model,),
            })
            if not self.attn_only:
                shapes.update({
                    p + "ln2.w": (self.d_model,), p + "ln2.b": (self.d_model,),
                    p + "mlp.W_in": (self.d_model, d_mlp), p + "mlp.b_in": (d_mlp,),
                    p + "mlp.W_out": (d_mlp, self.d_model), p + "mlp.b_out": (self.d_model,),
                })
        shapes.update({"ln_final.w": (self.d_model,), "ln_final.b": (self.d_model,),
                       "unembed.W_U": (self.d_model, self.d_vocab), "unembed.b_U": (self.d_vocab,)})
        self._names = list(shapes)
        self.params = nn.ParameterDict({n.replace(".", "__"): nn.Parameter(torch.empty(s))
                                        for n, s in shapes.items()})
        self.reset_parameters()
        causal = torch.ones(self.n_ctx, self.n_ctx, dtype=torch.bool).tril()
        self.register_buffer("causal", causal, persistent=False)

    def reset_parameters(self) -> None:
        """TransformerLens's default ("gpt2") init: weights N(0, 0.8/sqrt(d_model)) drawn in
        its parameter order, biases 0, layer-norm scales 1 (bit-identical to
        ``torch.manual_seed(s); HookedTransformer(cfg)``)."""
        std = 0.8 / math.sqrt(self.d_model)
        with torch.no_grad():
            for name in self._names:
                param = self.p(name)
                leaf = name.rsplit(".", 1)[-1]
                if leaf.startswith("W_"):
                    param.normal_(0.0, std)
                elif leaf == "w":
                    param.fill_(1.0)
                else:
                    param.zero_()

    def p(self, name: str) -> nn.Parameter:
        return cast(nn.Parameter, self.params[name.replace(".", "__")])

    def tl_state_dict(self) -> dict[str, Tensor]:
        """Parameters under their TransformerLens names."""
        return {name: self.p(name).detach().contiguous().clone() for name in self._names}

    def load_tl_state_dict(self, state: dict[str, Tensor]) -> None:
        with torch.no_grad():
            for name in self._names:
                self.p(name).copy_(state[name])

    def named_tl_parameters(self) -> list[tuple[str, nn.Parameter]]:
        return [(name, self.p(name)) for name in self._names]

    def forward(self, tokens: Tensor, patterns: list[Tensor] | None = None) -> Tensor:
        """Logits ``[batch, pos, d_vocab]``; appends each layer's attention pattern
        ``[batch, head, q, k]`` to ``patterns`` when a list is given."""
        seq = tokens.shape[1]
        p = self.p
        x = p("embed.W_E")[tokens] + p("pos_embed.W_pos")[:seq]
        mask = self.causal[:seq, :seq]
        for layer in range(self.n_layers):
            b = f"blocks.{layer}."
            h = _ln(x, p(b + "ln1.w"), p(b + "ln1.b"), self.eps)
            q = torch.einsum("bpd,hde->bphe", h, p(b + "attn.W_Q")) + p(b + "attn.b_Q")
            k = torch.einsum("bpd,hde->bphe", h, p(b + "attn.W_K")) + p(b + "attn.b_K")
            v = torch.einsum("bpd,hde->bphe", h, p(b + "attn.W_V")) + p(b + "attn.b_V")
            scores = torch.einsum("bqhe,bkhe->bhqk", q, k) / math.sqrt(self.d_head)
            pattern = scores.masked_fill(~mask, float("-inf")).softmax(-1)
            if patterns is not None:
                patterns.append(pattern.detach())
            z = torch.einsum("bhqk,bkhe->bqhe", pattern, v)
            x = x + torch.einsum("bqhe,hed->bqd", z, p(b + "attn.W_O")) + p(b + "attn.b_O")
            if not self.attn_only:
                h = _ln(x, p(b + "ln2.w"), p(b + "ln2.b"), self.eps)
                act = torch.nn.functional.gelu(h @ p(b + "mlp.W_in") + p(b + "mlp.b_in"))
                x = x + act @ p(b + "mlp.W_out") + p(b + "mlp.b_out")
        x = _ln(x, p("ln_final.w"), p("ln_final.b"), self.eps)
        return x @ p("unembed.W_U") + p("unembed.b_U")
