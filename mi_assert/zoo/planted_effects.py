"""Planted models whose true effect size is a parameter: for size and power near a threshold.

The planted zoo model (:mod:`mi_assert.zoo.planted`) has crisp circuits (scores near 1 or 0),
so calibration against it only checks effects far from any threshold. The builders here start
from it with ``noise=0`` (so the ground truth is exact) and turn one effect into a dial, with
per-token heterogeneity so that every prompt draw gives a different sample:

* :func:`graded_induction_model` (heads): the induction head's attention on the induction
  target is ``p_v`` for query token ``v`` (the rest goes to BOS). The per-prompt induction
  score is a mean of ``p_v`` over the prompt's second repeat (rows with repeated tokens inside
  the prompt split it differently), so its population mean is a known function of ``p``,
  computed once on a large prompt set (:func:`induction_truth`).
* :func:`split_induction_model` (causal): two identical induction heads share the logit: head
  ``a`` copies token ``v`` with OV gain ``g_v s_v``, head ``b`` with ``(1 - g_v) s_v``. On
  induction pairs, patching ``a`` alone (denoise) recovers exactly
  ``sum_v g_v s_v / sum_v s_v`` of the logit difference in expectation (a ratio of means; the
  correct and wrong answers are each uniform over the non-BOS tokens), and ``a``'s direct
  share of the clean logit difference is the same number (:func:`split_truth`).
* :func:`graded_sae` (SAE): orthogonal synthetic features, an SAE that reads them exactly and
  writes feature ``i`` back with gain ``g_i`` (so ``x̂ = g ⊙ x``) plus ``n_dead`` latents that
  never fire. Explained variance, MSE and the dead fraction are closed-form
  (:class:`GradedSae`).

Nothing here changes the zoo models: these are new models built next to them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from mi_assert.errors import MiAssertInputError
from mi_assert.zoo.planted import BOS_TOKEN_ID, PlantedCircuit, build_planted_induction


def spread(n: int, seed: int) -> np.ndarray:
    """``n`` values evenly spaced in [-1, 1] (mean exactly 0), in a seeded random order."""
    values = np.linspace(-1.0, 1.0, n)
    return values[np.random.default_rng(seed).permutation(n)]


def _per_token(value: float | Sequence[float] | np.ndarray, d_vocab: int, name: str) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim == 0:
        arr = np.full(d_vocab, float(arr))
    if arr.shape != (d_vocab,):
        raise MiAssertInputError(f"{name} must be a number or {d_vocab} values (one per token); "
                                 f"got shape {arr.shape}")
    return arr


def _non_bos(d_vocab: int) -> np.ndarray:
    return np.array([v for v in range(d_vocab) if v != BOS_TOKEN_ID])


def _handle(model: Any, circuit: PlantedCircuit, spec: str) -> Any:
    """The model as a TransformerLens handle that knows its BOS id and ground truth (what
    ``load_model("planted-induction@sN")`` gives; a bare HookedTransformer has no BOS id, so
    the prompt generators would leave BOS out)."""
    from mi_assert.loading import wrap_tl_model

    meta = {"bos_token_id": circuit.bos_token_id, "ground_truth": circuit}
    return wrap_tl_model(model, spec, "transformer_lens", meta)


# ----- heads: an induction head with a chosen attention on its target ---------------------------
def graded_induction_model(p: float | Sequence[float] | np.ndarray, seed: int = 0,
                           d_vocab: int = 64, n_ctx: int = 64,
                           strength: float = 20.0) -> Any:
    """The planted model (``noise=0``, as a handle) whose induction head puts ``p[v]`` of its attention on
    the induction target for query token ``v`` and the rest on BOS.

    The head's query for token ``v`` scores ``strength`` on a key whose previous token is ``v``
    and ``c_v = strength + log((1 - p_v) / p_v)`` on BOS (every other key scores 0, i.e.
    ``e^-strength`` relative weight), so with one earlier copy of ``v`` the attention on the
    target is ``p_v`` to about ``n_ctx e^-strength``. ``seed`` permutes the heads only.
    """
    pv = _per_token(p, d_vocab, "p")
    live = _non_bos(d_vocab)
    if not np.all((pv[live] > 0) & (pv[live] < 1)):
        raise MiAssertInputError("p must lie strictly between 0 and 1 for every non-BOS token")
    model, circuit = build_planted_induction(seed=seed, d_vocab=d_vocab, n_ctx=n_ctx,
                                             strength=strength, noise=0.0)
    ((layer, head),) = circuit.heads("induction")
    bos_logit = np.full(d_vocab, strength / 2)
    bos_logit[live] = strength + np.log((1 - pv[live]) / pv[live])
    V = d_vocab
    attn = model.blocks[layer].attn
    with torch.no_grad():
        attn.b_Q[head, V] = 0.0  # the constant BOS fallback becomes per query token
        attn.W_Q[head, torch.arange(V), V] = torch.tensor(bos_logit, dtype=attn.W_Q.dtype)
    notes = {**circuit.notes, "noise": 0.0, "planted": "graded induction attention",
             "p_mean": float(pv[live].mean())}
    circuit = PlantedCircuit(roles=circuit.roles, offset=circuit.offset, notes=notes)
    return _handle(model, circuit, f"graded-induction(p_mean={notes['p_mean']:.4g})@s{seed}")


def graded_p(mean: float, amplitude: float, d_vocab: int = 64, seed: int = 0) -> np.ndarray:
    """Per-token attention ``mean + amplitude * u_v`` (``u`` evenly spread in [-1, 1] over the
    non-BOS tokens, mean exactly ``mean``)."""
    out = np.full(d_vocab, float(mean))
    live = _non_bos(d_vocab)
    out[live] = mean + amplitude * spread(len(live), seed)
    return out


def sample_repeated(n_prompts: int, repeat_len: int, d_vocab: int = 64, seed: int = 0) -> np.ndarray:
    """``[n, 2L+1]`` ``BOS + r + r`` prompts, tokens uniform over the non-BOS ids with
    replacement: the distribution the head claims draw with ``vocab_fraction=1`` on a model
    without a tokenizer (:func:`mi_assert.prompts.repeated_tokens`)."""
    live = _non_bos(d_vocab)
    r = live[np.random.default_rng(seed).integers(0, len(live), (n_prompts, repeat_len))]
    return np.concatenate([np.full((n_prompts, 1), BOS_TOKEN_ID), r, r], axis=1)


@dataclass(frozen=True)
class InductionRows:
    """Per prompt, the query rows the induction score counts: their token and how many keys
    follow an earlier copy of it (``k``; 0 = row not counted)."""

    tokens: np.ndarray  # [n, Q]
    k: np.ndarray  # [n, Q]

    @classmethod
    def of(cls, prompts: np.ndarray) -> InductionRows:
        same = prompts[:, :, None] == prompts[:, None, :]  # [n, q, j]
        k = np.tril(same, -1).sum(-1)  # earlier copies of the query token
        return cls(tokens=prompts, k=k)

    def scores(self, p: np.ndarray) -> np.ndarray:
        """Per-prompt induction score of :func:`graded_induction_model`'s head: a row with
        ``k`` marked keys (each at weight ``e^strength``) and BOS at ``e^c_v`` puts
        ``k / (k + (1 - p_v) / p_v)`` on them (every other key: ``e^-strength``, dropped)."""
        odds = (1 - p) / p
        k = self.k.astype(np.float64)
        mass = np.where(self.k > 0, k / (k + odds[self.tokens]), 0.0)
        return mass.sum(-1) / (self.k > 0).sum(-1)


def induction_truth(p: np.ndarray, repeat_len: int, n_prompts: int = 400_000,
                    seed: int = 123_456) -> tuple[float, float]:
    """Population mean of the per-prompt induction score for attention ``p`` (per token) by
    Monte Carlo over :func:`sample_repeated` prompts with :meth:`InductionRows.scores`:
    ``(mean, its standard error)``. (``tests/stats/test_model_level_size.py`` checks the
    formula against the model's own attention.)"""
    s = np.concatenate([InductionRows.of(sample_repeated(min(20_000, n_prompts - start),
                                                         repeat_len, p.shape[0], seed + start)
                                         ).scores(p)
                        for start in range(0, n_prompts, 20_000)])
    return float(s.mean()), float(s.std(ddof=1) / math.sqrt(s.size))


def solve_p_mean(truth: float, amplitude: float, repeat_len: int, d_vocab: int = 64,
                 n_prompts: int = 400_000, seed: int = 123_456, order_seed: int = 0) -> float:
    """The ``mean`` of :func:`graded_p` whose :func:`induction_truth` is ``truth`` (bisection
    on one fixed Monte Carlo sample, to 1e-7)."""
    rows = [InductionRows.of(sample_repeated(min(20_000, n_prompts - start), repeat_len,
                                             d_vocab, seed + start))
            for start in range(0, n_prompts, 20_000)]

    def mean_score(m: float) -> float:
        p = graded_p(m, amplitude, d_vocab, order_seed)
        return float(np.mean(np.concatenate([r.scores(p) for r in rows])))

    lo, hi = amplitude + 1e-6, 1 - amplitude - 1e-6
    if not mean_score(lo) < truth < mean_score(hi):
        raise MiAssertInputError(f"truth {truth} is out of reach with amplitude {amplitude}")
    while hi - lo > 1e-7:
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if mean_score(mid) < truth else (lo, mid)
    return 0.5 * (lo + hi)


# ----- causal: two induction heads sharing the logit difference ---------------------------------
def split_induction_model(gain: float | Sequence[float] | np.ndarray,
                          scale: float | Sequence[float] | np.ndarray = 1.0, seed: int = 0,
                          d_vocab: int = 64, n_ctx: int = 64,
                          strength: float = 20.0) -> Any:
    """The planted model (``noise=0``, as a handle) with its ``uniform`` layer-1 head turned into a second
    induction head: head ``induction_a`` (the original) copies token ``v`` with OV gain
    ``gain[v] * scale[v]``, head ``induction_b`` with ``(1 - gain[v]) * scale[v]``.

    Both heads attend alike, so on clean prompts they write ``scale[c]`` of the correct token's
    logit between them; see :func:`split_truth` for the recovery / share this plants.
    """
    g = _per_token(gain, d_vocab, "gain")
    s = _per_token(scale, d_vocab, "scale")
    if not np.all(s[_non_bos(d_vocab)] > 0):
        raise MiAssertInputError("scale must be positive for every non-BOS token")
    model, circuit = build_planted_induction(seed=seed, d_vocab=d_vocab, n_ctx=n_ctx,
                                             strength=strength, noise=0.0)
    ((layer, a),) = circuit.heads("induction")
    ((layer_b, b),) = circuit.heads("uniform")
    assert layer == layer_b == 1
    attn = model.blocks[layer].attn
    V = d_vocab
    ar = torch.arange(V)
    with torch.no_grad():
        for name in ("W_Q", "W_K", "b_Q", "b_K", "W_O", "b_V"):
            getattr(attn, name)[b] = getattr(attn, name)[a]
        attn.W_V[a, ar, ar] = torch.tensor(g * s, dtype=attn.W_V.dtype)
        attn.W_V[b] = 0.0
        attn.W_V[b, ar, ar] = torch.tensor((1 - g) * s, dtype=attn.W_V.dtype)
    roles = {k: v for k, v in circuit.roles.items() if k != "uniform"}
    roles.update(induction=[(1, a), (1, b)], copying=[(1, a), (1, b)],
                 induction_a=[(1, a)], induction_b=[(1, b)])
    truth = split_truth(g, s)
    notes = {**circuit.notes, "noise": 0.0, "planted": "logit split between two induction heads",
             "truth": truth}
    circuit = PlantedCircuit(roles=roles, offset=circuit.offset, notes=notes)
    return _handle(model, circuit, f"split-induction(share={truth:.4g})@s{seed}")


def split_truth(gain: np.ndarray, scale: np.ndarray | float = 1.0) -> float:
    """The planted share of head ``a``: ``sum_v g_v s_v / sum_v s_v`` over non-BOS tokens.

    Denoise-patching ``a`` on an induction pair with correct ``c`` and wrong ``w``: the clean
    run writes ``s_c`` for ``c`` (both heads), the corrupted ``s_w`` for ``w``, the patched
    ``g_c s_c`` for ``c`` and ``(1 - g_w) s_w`` for ``w``, so per pair
    ``patched - corrupted = k (g_c s_c + g_w s_w)`` and ``clean - corrupted = k (s_c + s_w)``
    (``k`` = half the unembedding strength times the attention on the target, the same in
    every run). ``c`` and ``w`` are each uniform over the non-BOS tokens, so the ratio of the
    means is ``E[g s] / E[s]``. ``a``'s direct share of the clean logit difference
    (``k g_c s_c / k s_c`` per prompt) has the same ratio of means.
    """
    g = np.asarray(gain, dtype=np.float64)
    s = np.broadcast_to(np.asarray(scale, dtype=np.float64), g.shape)
    live = _non_bos(g.shape[0])
    return float((g[live] * s[live]).sum() / s[live].sum())


def split_gain(target: float, amplitude: float, scale: np.ndarray, seed: int = 0) -> np.ndarray:
    """Per-token gains ``target + amplitude * u_v`` shifted so that :func:`split_truth` is
    exactly ``target`` under ``scale``."""
    d_vocab = scale.shape[0]
    live = _non_bos(d_vocab)
    u = np.zeros(d_vocab)
    u[live] = spread(len(live), seed)
    u[live] -= (u[live] * scale[live]).sum() / scale[live].sum()
    return target + amplitude * u


# ----- SAE: a known reconstruction ---------------------------------------------------------------
@dataclass(frozen=True)
class GradedSae:
    """Orthogonal synthetic data and an SAE with known explained variance, MSE and dead fraction.

    Data: ``d`` coordinates, each active independently with probability ``q`` with a
    coefficient ``U(0, 1)`` (so ``E[c^2] = q/3``, ``Var c = q/3 - q^2/4``). The SAE reads
    coordinate ``i`` exactly (JumpReLU, threshold ``1e-6``) and writes it back times
    ``gain[i]``; ``n_dead`` more latents have zero encoder rows and never fire, and ``n_spare``
    more read coordinate ``j mod d`` (the ``j``-th spare) but write nothing, so they fire
    (probability ``q``) without changing the reconstruction.
    """

    gain: np.ndarray
    q: float
    n_dead: int = 0
    n_spare: int = 0

    @property
    def d(self) -> int:
        return int(self.gain.shape[0])

    @property
    def d_sae(self) -> int:
        return self.d + self.n_dead + self.n_spare

    @property
    def mse(self) -> float:
        """Population MSE per token (summed over dimensions)."""
        return float(((1 - self.gain) ** 2).sum() * self.q / 3)

    @property
    def explained_variance(self) -> float:
        """Population pooled explained variance ``1 - E|x - x̂|^2 / E|x - E x|^2``."""
        var = self.q / 3 - self.q**2 / 4
        return 1.0 - self.mse / (self.d * var)

    @property
    def dead_fraction(self) -> float:
        return self.n_dead / self.d_sae

    def sample(self, n: int, seed: int) -> Tensor:
        gen = torch.Generator().manual_seed(5_000_011 + int(seed))
        active = torch.rand(n, self.d, generator=gen) < self.q
        return torch.rand(n, self.d, generator=gen) * active

    def sae(self) -> Any:
        from sae_lens.saes.jumprelu_sae import JumpReLUSAE, JumpReLUSAEConfig
        from sae_lens.saes.sae import SAEMetadata

        meta = SAEMetadata(hook_name="synthetic", model_name="graded", context_size=1,
                           prepend_bos=False)
        sae = JumpReLUSAE(JumpReLUSAEConfig(d_in=self.d, d_sae=self.d_sae,
                                            apply_b_dec_to_input=False, metadata=meta))
        with torch.no_grad():
            sae.W_enc.zero_()
            sae.W_dec.zero_()
            idx = torch.arange(self.d)
            sae.W_enc[idx, idx] = 1.0
            sae.W_dec[idx, idx] = torch.tensor(self.gain, dtype=sae.W_dec.dtype)
            spare = torch.arange(self.n_spare)
            sae.W_enc[spare % self.d, self.d + self.n_dead + spare] = 1.0
            sae.b_enc.zero_()
            sae.b_dec.zero_()
            sae.threshold.fill_(1e-6)
        return sae


def graded_sae(explained_variance: float, d: int = 32, q: float = 0.125, n_dead: int = 0,
               n_spare: int = 0, spread_seed: int = 0) -> GradedSae:
    """A :class:`GradedSae` whose population explained variance is exactly
    ``explained_variance``: squared errors ``(1 - g_i)^2 = k w_i`` with ``w_i`` evenly spread in
    [0.5, 1.5] (so features are reconstructed unequally) and ``k`` solved for."""
    var = q / 3 - q**2 / 4
    mean_sq_gap = (1 - explained_variance) * var / (q / 3)  # mean_i (1 - g_i)^2
    if not 0 < mean_sq_gap:
        raise MiAssertInputError("explained_variance must be below 1")
    w = 1.0 + 0.5 * spread(d, spread_seed)
    gain = 1.0 - np.sqrt(mean_sq_gap * w)
    return GradedSae(gain=gain, q=q, n_dead=n_dead, n_spare=n_spare)


def sae_for_mse(mse: float, d: int = 32, q: float = 0.125, **kwargs: Any) -> GradedSae:
    """A :func:`graded_sae` whose population MSE is exactly ``mse``."""
    var = q / 3 - q**2 / 4
    return graded_sae(1.0 - mse / (d * var), d=d, q=q, **kwargs)
