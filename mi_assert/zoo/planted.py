"""Hand-built attention-only models with planted circuits whose ground truth is exact.

Residual stream layout (no layer norm, no attention scaling, so every score is what we wrote):

=====================  =========================================================
subspace               content
=====================  =========================================================
``tok``  [0, V)        one-hot of the current token (from ``W_E``)
``pos``  [V, V+C)      one-hot of the position (from ``W_pos``)
``prev`` [V+C, 2V+C)   one-hot of the *previous* token, written by the prev-token head
``out``  [2V+C, 3V+C)  one-hot of the predicted next token, written by the induction head
``junk`` [3V+C, +8)    where distractor heads write (read by nothing)
=====================  =========================================================

Heads (before the seed's head permutation within each layer):

* layer 0 ``prev``: previous-token head. Query at i matches key at i-1 via the pos subspace;
  OV copies ``tok`` → ``prev``.
* layer 0 ``positional``: the impostor. Attends a fixed ``offset`` back (i → i-offset), which
  is exactly the induction target at repeat length ``offset + 1`` and nothing else.
* layer 0 ``duplicate``: attends to earlier positions holding the same token (self-attention
  penalised), writes to ``junk``.
* layer 0 ``bos``: attention sink: always attends to position 0 (the BOS token).
* layer 1 ``induction``: K-composition with the prev-token head: query token t matches keys
  whose ``prev`` is t; falls back to BOS; OV copies ``tok`` → ``out``, which ``W_U`` reads
  as logits. It alone drives the logits, so patching it recovers the whole logit difference.
* layer 1 ``self``, ``uniform``, ``bos2``: distractors (current token, uniform, and a second
  sink whose OV is zero).

``seed`` permutes head indices within each layer and adds small Gaussian noise (std
``noise``) to every weight, so calibration draws differ while the ground truth is known.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

BOS_TOKEN_ID = 0


@dataclass(frozen=True)
class PlantedCircuit:
    """Which (layer, head) plays which role in a planted model."""

    roles: dict[str, list[tuple[int, int]]]
    offset: int  # the positional impostor's fixed look-back distance
    bos_token_id: int = BOS_TOKEN_ID
    notes: dict[str, Any] = field(default_factory=dict)

    def heads(self, role: str) -> list[tuple[int, int]]:
        return list(self.roles.get(role, []))

    def all_heads(self, n_layers: int, n_heads: int) -> list[tuple[int, int]]:
        return [(layer, head) for layer in range(n_layers) for head in range(n_heads)]


def build_planted_induction(
    seed: int = 0,
    d_vocab: int = 64,
    n_ctx: int = 64,
    offset: int = 15,
    strength: float = 20.0,
    noise: float = 0.01,
) -> tuple[Any, PlantedCircuit]:
    """A 2-layer, 4-heads-per-layer attention-only HookedTransformer with planted heads."""
    from transformer_lens import HookedTransformer, HookedTransformerConfig

    V, C, n_heads = d_vocab, n_ctx, 4
    tok, pos, prev, out, junk = 0, V, V + C, 2 * V + C, 3 * V + C
    d_model, d_head = 3 * V + C + 8, V + C
    cfg = HookedTransformerConfig(
        n_layers=2,
        d_model=d_model,
        d_head=d_head,
        n_heads=n_heads,
        d_vocab=V,
        n_ctx=C,
        attn_only=True,
        normalization_type=None,
        positional_embedding_type="standard",
        use_attn_scale=False,
        act_fn=None,  # type: ignore[arg-type]  # TL annotates str, but accepts None when attn_only
        default_prepend_bos=False,
        seed=seed,
        model_name=f"planted-induction-s{seed}",
    )
    gen = torch.Generator().manual_seed(10_000 + seed)
    perm0 = torch.randperm(n_heads, generator=gen).tolist()
    perm1 = torch.randperm(n_heads, generator=gen).tolist()
    b = strength
    sd: dict[str, torch.Tensor] = {}
    W_E = torch.zeros(V, d_model)
    W_E[torch.arange(V), tok + torch.arange(V)] = 1.0
    W_pos = torch.zeros(C, d_model)
    W_pos[torch.arange(C), pos + torch.arange(C)] = 1.0
    W_U = torch.zeros(d_model, V)
    W_U[out + torch.arange(V), torch.arange(V)] = b / 2
    sd["embed.W_E"], sd["pos_embed.W_pos"], sd["unembed.W_U"] = W_E, W_pos, W_U
    sd["unembed.b_U"] = torch.zeros(V)

    def blank() -> dict[str, torch.Tensor]:
        return {
            "W_Q": torch.zeros(n_heads, d_model, d_head),
            "W_K": torch.zeros(n_heads, d_model, d_head),
            "W_V": torch.zeros(n_heads, d_model, d_head),
            "W_O": torch.zeros(n_heads, d_head, d_model),
            "b_Q": torch.zeros(n_heads, d_head),
            "b_K": torch.zeros(n_heads, d_head),
            "b_V": torch.zeros(n_heads, d_head),
        }

    ar_v, ar_c = torch.arange(V), torch.arange(C)
    # ---------------- layer 0 ----------------
    L0 = blank()
    h = perm0[0]  # previous-token: q_i = b e_i, k_j = e_{j+1}; OV tok -> prev
    L0["W_Q"][h, pos + ar_c, ar_c] = b
    L0["W_K"][h, pos + ar_c[:-1], ar_c[1:]] = 1.0
    L0["W_V"][h, tok + ar_v, ar_v] = 1.0
    L0["W_O"][h, ar_v, prev + ar_v] = 1.0
    h = perm0[1]  # positional impostor: q_i = b e_i, k_j = e_{j+offset}
    L0["W_Q"][h, pos + ar_c, ar_c] = b
    L0["W_K"][h, pos + ar_c[:-offset], ar_c[offset:]] = 1.0
    L0["W_V"][h, tok, 0] = 1.0
    L0["W_O"][h, 0, junk] = 1.0
    h = perm0[2]  # duplicate-token: same token b, self penalised by b/4
    L0["W_Q"][h, tok + ar_v, ar_v] = b
    L0["W_K"][h, tok + ar_v, ar_v] = 1.0
    L0["W_Q"][h, pos + ar_c, V + ar_c] = -b / 4
    L0["W_K"][h, pos + ar_c, V + ar_c] = 1.0
    L0["W_V"][h, tok, 0] = 1.0
    L0["W_O"][h, 0, junk + 1] = 1.0
    h = perm0[3]  # BOS sink: constant query, key = BOS token
    L0["b_Q"][h, 0] = b
    L0["W_K"][h, tok + BOS_TOKEN_ID, 0] = 1.0
    L0["W_V"][h, tok, 0] = 1.0
    L0["W_O"][h, 0, junk + 2] = 1.0
    # ---------------- layer 1 ----------------
    L1 = blank()
    h = perm1[0]  # induction: q = b tok_i (+ const), k = prev_j (+ BOS fallback b/2)
    L1["W_Q"][h, tok + ar_v, ar_v] = b
    L1["b_Q"][h, V] = b / 2
    L1["W_K"][h, prev + ar_v, ar_v] = 1.0
    L1["W_K"][h, tok + BOS_TOKEN_ID, V] = 1.0
    L1["W_V"][h, tok + ar_v, ar_v] = 1.0
    L1["W_O"][h, ar_v, out + ar_v] = 1.0
    h = perm1[1]  # current-token (self) head
    L1["W_Q"][h, pos + ar_c, ar_c] = b
    L1["W_K"][h, pos + ar_c, ar_c] = 1.0
    L1["W_V"][h, tok, 0] = 1.0
    L1["W_O"][h, 0, junk + 3] = 1.0
    # perm1[2]: uniform (all zero weights); perm1[3]: second sink with zero OV
    h = perm1[3]
    L1["b_Q"][h, 0] = b
    L1["W_K"][h, tok + BOS_TOKEN_ID, 0] = 1.0

    for layer, params in enumerate((L0, L1)):
        for key, value in params.items():
            sd[f"blocks.{layer}.attn.{key}"] = value
        sd[f"blocks.{layer}.attn.b_O"] = torch.zeros(d_model)
    if noise > 0:
        for key in sorted(sd):
            sd[key] = sd[key] + noise * torch.randn(sd[key].shape, generator=gen)

    model = HookedTransformer(cfg)
    missing = model.load_state_dict(sd, strict=False)
    unexpected = [k for k in missing.unexpected_keys]
    assert not unexpected, f"planted model: unexpected keys {unexpected}"
    not_loaded = [k for k in missing.missing_keys if not k.endswith(("IGNORE", "mask"))]
    assert not not_loaded, f"planted model: weights not set {not_loaded}"
    model.eval()
    circuit = PlantedCircuit(
        roles={
            "previous_token": [(0, perm0[0])],
            "positional": [(0, perm0[1])],
            "duplicate_token": [(0, perm0[2])],
            "bos": [(0, perm0[3]), (1, perm1[3])],
            "induction": [(1, perm1[0])],
            "copying": [(1, perm1[0])],
            "self": [(1, perm1[1])],
            "uniform": [(1, perm1[2])],
        },
        offset=offset,
        notes={"strength": strength, "noise": noise, "seed": seed},
    )
    return model, circuit
