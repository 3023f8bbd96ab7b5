"""Copying scores from the OV circuit ``W_E · W_V · W_O · W_U`` (weights only, no prompts).

A copying head raises the logit of the token it attends to: row ``t`` of the full OV circuit
(the logits the head writes when it attends to token ``t``) should rank ``t`` itself near the
top. The per-token sample is the **diagonal percentile**

    p_t = share of the other column tokens c whose OV logit is below t's own (ties count half)

so a perfect copier has ``p_t = 1`` and a head unrelated to copying, like a random OV circuit of
the same shapes, has ``E[p_t] = 0.5`` whatever its scale (the statistic is scale-free). The
bootstrap resamples tokens. Tokens are the ids valid both as input and as output (below
``d_vocab`` and ``d_vocab_out``: models compiled from RASP programs have a smaller output
vocabulary), except special ids. Each seed draws its own ``n_tokens`` row tokens (all of them when
the vocabulary is small) and, for large vocabularies, ``max_columns`` comparison columns, so
GPT-2's 50k x 50k circuit is never formed.

Two diagnostics go into the evidence: the same statistic for a seeded random OV circuit of the
same shapes (Gaussian ``W_V``, ``W_O``; the baseline the claim is read against), and the
eigenvalue copying score ``sum(lambda) / sum(|lambda|)`` of the full circuit (Elhage et al.
2021, as in ARENA), computed exactly through the ``d_head x d_head`` matrix
``W_O (W_U W_E) W_V``, which has the same non-zero eigenvalues.

Embeddings are the raw ``W_E`` (the attention-only framing of Elhage et al.); for models with
MLPs, real copying heads often read MLP0-processed embeddings, which this does not model.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from mi_assert.backends.base import ModelHandle
from mi_assert.errors import MiAssertInputError, check_finite
from mi_assert.heads.prompts import _derived_seed, allowed_vocab


@dataclass
class CopyingDraw:
    """One seed's token draw: per-token diagonal percentiles for every head and the baseline."""

    scores: Tensor  # [n_tokens, n_layers, n_heads]
    baseline: Tensor  # [n_tokens]
    n_tokens: int
    n_columns: int
    tokens: Tensor  # [n_tokens]: the row token ids (the units the bootstrap resamples)


def _draw_tokens(allowed: Tensor, seed: int, n_tokens: int, max_columns: int) -> tuple[Tensor, Tensor]:
    gen = torch.Generator().manual_seed(_derived_seed(seed, 7))
    perm = allowed[torch.randperm(len(allowed), generator=gen)]
    rows = perm[: min(n_tokens, len(allowed))]
    cols = allowed if len(allowed) <= max_columns else perm[: max(max_columns, len(rows))]
    return rows.sort().values, cols.sort().values


def diagonal_percentile(ov: Tensor, rows: Tensor, cols: Tensor) -> Tensor:
    """``p_t`` for ``ov [..., n_rows, n_cols]`` whose row i is token ``rows[i]``.

    Every row token must be among ``cols``; ``ov`` has at least two dims.
    """
    col_index = {int(c): j for j, c in enumerate(cols.tolist())}
    idx = torch.tensor([col_index[int(r)] for r in rows.tolist()], dtype=torch.long)
    own = ov.gather(-1, idx.expand(*ov.shape[:-1])[..., None])  # [..., n_rows, 1]
    below = (ov < own).sum(-1).to(torch.float64)
    ties = (ov == own).sum(-1).to(torch.float64) - 1  # the own entry ties with itself
    return (below + 0.5 * ties) / (ov.shape[-1] - 1)


def copyable_tokens(handle: ModelHandle) -> Tensor:
    """Ids a copying score can rank: a token's own logit must exist (``< d_vocab_out``, not
    only ``< d_vocab``) and be compared with at least one other token's."""
    allowed = allowed_vocab(handle)
    if len(allowed) < 2:
        raise MiAssertInputError(
            f"copying scores rank a token's own output logit among other tokens'; model "
            f"{handle.spec!r} has {len(allowed)} non-special id(s) valid as both input and output "
            f"(d_vocab={handle.d_vocab}, d_vocab_out={handle.d_vocab_out}); need at least 2"
        )
    return allowed


def copying_draw(handle: ModelHandle, seed: int, n_tokens: int = 256,
                 max_columns: int = 4096) -> CopyingDraw:
    """Diagonal percentiles for every head on one seed's token draw, plus the random baseline."""
    w = handle.weights()
    allowed = copyable_tokens(handle)
    rows, cols = _draw_tokens(allowed, seed, n_tokens, max_columns)
    dev = w.W_E.device
    E = w.W_E[rows.to(dev)].float()  # [R, d_model]
    U = w.W_U[:, cols.to(dev)].float()  # [d_model, C]
    scores = torch.empty(len(rows), handle.n_layers, handle.n_heads, dtype=torch.float64)
    for layer in range(handle.n_layers):
        ev = torch.einsum("rd,hde->hre", E, w.W_V[layer].float())  # [H, R, d_head]
        out = torch.einsum("hre,hed->hrd", ev, w.W_O[layer].float())  # [H, R, d_model]
        ov = out @ U  # [H, R, C]
        check_finite(f"OV circuit of layer {layer}", ov)
        scores[:, layer] = diagonal_percentile(ov.cpu(), rows, cols).T
    gen = torch.Generator().manual_seed(_derived_seed(seed, 11))
    W_V = torch.randn(handle.d_model, handle.d_head, generator=gen).to(dev)
    W_O = torch.randn(handle.d_head, handle.d_model, generator=gen).to(dev)
    baseline = diagonal_percentile((E @ W_V @ W_O @ U).cpu(), rows, cols)
    return CopyingDraw(scores=scores, baseline=baseline, n_tokens=len(rows), n_columns=len(cols),
                       tokens=rows)


def unembed_embed(handle: ModelHandle) -> Tensor:
    """``W_U W_E`` over the ids valid as input and output (BOS and special ids excluded), float64."""
    w = handle.weights()
    allowed = copyable_tokens(handle).to(w.W_E.device)
    return (w.W_U[:, allowed].double() @ w.W_E[allowed].double()).cpu()


def eigenvalue_score(handle: ModelHandle, layer: int, head: int, ue: Tensor | None = None) -> float:
    """``sum(lambda) / sum(|lambda|)`` of one head's full OV circuit (allowed vocabulary).

    ``ue``: :func:`unembed_embed` of ``handle`` when the caller already has it (it is the
    costly part: a ``d_model x d_vocab x d_model`` product, the same for every head).
    """
    w = handle.weights()
    UE = unembed_embed(handle) if ue is None else ue
    M = w.W_O[layer, head].double().cpu() @ UE @ w.W_V[layer, head].double().cpu()
    lam = torch.linalg.eigvals(M)
    return float(lam.real.sum() / lam.abs().sum().clamp_min(1e-30))


def random_eigenvalue_score(handle: ModelHandle, seed: int, ue: Tensor | None = None) -> float:
    """The eigenvalue score of one seeded random head (Gaussian ``W_V``, ``W_O``)."""
    UE = unembed_embed(handle) if ue is None else ue
    gen = torch.Generator().manual_seed(_derived_seed(seed, 13))
    W_V = torch.randn(handle.d_model, handle.d_head, generator=gen, dtype=torch.float64)
    W_O = torch.randn(handle.d_head, handle.d_model, generator=gen, dtype=torch.float64)
    lam = torch.linalg.eigvals(W_O @ UE @ W_V)
    return float(lam.real.sum() / lam.abs().sum().clamp_min(1e-30))
