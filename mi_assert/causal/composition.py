"""Weight-based claims: Q-, K- and V-composition between two attention heads.

The composition score (Elhage et al. 2021, "A Mathematical Framework for Transformer Circuits")
of an earlier head 1 into a later head 2 is

    ||W_OV^1 . W^2||_F / (||W_OV^1||_F ||W^2||_F)

with ``W_OV = W_V W_O`` and ``W^2`` = ``W_QK^2 = W_Q W_K^T`` (Q-composition: head 1's output
feeds head 2's queries), ``(W_QK^2)^T = W_K W_Q^T`` (K-composition: feeds the keys) or
``W_OV^2`` (V-composition: feeds the values), all in TransformerLens's row-vector layout. This
is exactly ``HookedTransformer.all_composition_scores(mode)`` (tested); like TL it ignores
biases and the layer norms between the heads.

A raw score has no scale of its own (two random matrices of these shapes already score about
``1/sqrt(d_model)``), so the claim compares it with a **baseline**: the same score for
``n_baseline`` draws of random Gaussian matrices with the shapes of ``W_V^1, W_O^1`` and head 2's
two matrices (seeded). The claim holds when the score exceeds the baseline's ``1 - alpha``
quantile (a Monte-Carlo test: ``p = (1 + #{baseline >= score}) / (n_baseline + 1)``) and is at
least ``min_ratio`` times the baseline mean (an effect size, so that a statistically detectable
but negligible alignment does not count as composition).

Reading the ratio: the Gaussian baseline's mean is about ``1/sqrt(d_model)``, and two heads that
compose *perfectly* through a ``k``-dimensional interface (head 1 writes exactly the ``k``
directions head 2 reads, uniformly) score ``1/sqrt(k)``, a ratio of ``sqrt(d_model / k)``. The
default ``min_ratio=1.5`` therefore asks for at least the alignment of perfect composition
through ``d_model / 2.25`` dimensions (under half the residual stream); unrelated heads score
about 1 (noise-like weights) or below (structured weights writing and reading different
subspaces).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from mi_assert.backends import ModelHandle
from mi_assert.backends.base import ModelWeights
from mi_assert.causal._readout_inputs import model_seed_of, parse_head, resolve_seeds
from mi_assert.errors import MiAssertInputError
from mi_assert.loading import resolve_model
from mi_assert.stats import ClaimOptions, ClaimSpec, Evidence, Fixed, all_of, claim_options
from mi_assert.stats.options import check_count
from mi_assert.verdict import asserting

KINDS = ("q", "k", "v")
#: what the ``n`` of a composition claim counts
BASELINE_UNIT = "random-baseline draws"
_F64 = torch.float64


def _check_kind(kind: Any) -> str:
    if not isinstance(kind, str) or kind.lower() not in KINDS:
        raise MiAssertInputError(
            f"kind {kind!r} is not a composition type: allowed 'q' (into the queries), 'k' (into "
            "the keys) or 'v' (into the values)"
        )
    return kind.lower()


def _factors(w: ModelWeights, layer: int, head: int, role: str, kind: str) -> tuple[Tensor, Tensor]:
    """The two factors ``(A [d_model, r], B [r, d_model])`` of a head's matrix, ``M = A @ B``."""
    if role == "left" or kind == "v":
        return w.W_V[layer, head].to("cpu", _F64), w.W_O[layer, head].to("cpu", _F64)
    W_Q, W_K = w.W_Q[layer, head].to("cpu", _F64), w.W_K[layer, head].to("cpu", _F64)
    return (W_Q, W_K.T) if kind == "q" else (W_K, W_Q.T)


def _scores(A1: Tensor, B1: Tensor, A2: Tensor, B2: Tensor) -> Tensor:
    """Composition scores of ``(A1 B1)`` into ``(A2 B2)``, batched over leading dims.

    Frobenius norms through ``r x r`` Gram matrices (``||A B||_F^2 = tr(A^T A . B B^T)``), so
    nothing ``d_model x d_model`` is formed.
    """
    G1, H1 = A1.mT @ A1, B1 @ B1.mT
    G2, H2 = A2.mT @ A2, B2 @ B2.mT
    M = B1 @ A2
    comp = (M.mT @ G1 @ M * H2.mT).sum((-2, -1))
    n1 = (G1 * H1.mT).sum((-2, -1))
    n2 = (G2 * H2.mT).sum((-2, -1))
    return (comp.clamp_min(0) / (n1 * n2)).sqrt()


def composition_score(model: Any, source: Any, target: Any, kind: str = "k") -> float:
    """The Q/K/V composition score of head ``source`` into the later head ``target``."""
    handle = resolve_model(model)
    kind = _check_kind(kind)
    (l1, h1), (l2, h2) = _check_pair(handle, source, target)
    w = handle.weights()
    return float(_scores(*_factors(w, l1, h1, "left", kind), *_factors(w, l2, h2, "right", kind)))


def composition_scores(model: Any, kind: str = "k") -> Tensor:
    """All pairs ``[n_layers, n_heads, n_layers, n_heads]`` (source first), zero unless the
    target's layer is later: the layout and values of TL's ``all_composition_scores``."""
    handle = resolve_model(model)
    kind = _check_kind(kind)
    w = handle.weights()
    L, H = handle.n_layers, handle.n_heads
    out = torch.zeros(L, H, L, H, dtype=_F64)
    for l1 in range(L):
        A1 = w.W_V[l1].to("cpu", _F64)[:, None]
        B1 = w.W_O[l1].to("cpu", _F64)[:, None]
        for l2 in range(l1 + 1, L):
            A2, B2 = zip(*(_factors(w, l2, h, "right", kind) for h in range(H)), strict=True)
            out[l1, :, l2] = _scores(A1, B1, torch.stack(A2)[None], torch.stack(B2)[None])
    return out


def _check_pair(handle: ModelHandle, source: Any, target: Any) -> tuple[tuple[int, int], tuple[int, int]]:
    src = parse_head(handle, source, "source head")
    tgt = parse_head(handle, target, "target head")
    if src[0] >= tgt[0]:
        raise MiAssertInputError(
            f"source head L{src[0]}H{src[1]} must sit in an earlier layer than target head "
            f"L{tgt[0]}H{tgt[1]}: a head can only compose with heads of later layers"
        )
    return src, tgt


def baseline_scores(shapes: tuple[tuple[int, ...], ...], n: int, seed: int) -> np.ndarray:
    """Composition scores of ``n`` draws of iid Gaussian matrices with the given four shapes.

    Depends only on the shapes, so it is cached: every head pair of a model shares one baseline.
    """
    return _baseline_cached(tuple(tuple(int(d) for d in s) for s in shapes), int(n), int(seed)).copy()


@functools.lru_cache(maxsize=32)
def _baseline_cached(shapes: tuple[tuple[int, ...], ...], n: int, seed: int, chunk: int = 32) -> np.ndarray:
    # float32: the scores need ~4 digits, and float64 Gram products would dominate the run time
    gen = torch.Generator().manual_seed(int(seed))
    out: list[Tensor] = []
    for start in range(0, n, chunk):
        m = min(chunk, n - start)
        mats = [torch.randn((m, *s), generator=gen, dtype=torch.float32) for s in shapes]
        out.append(_scores(*mats).double())
    return torch.cat(out).numpy()


def _composition_claim(handle: ModelHandle, source: Any, target: Any, kind: str,
                       min_ratio: float, n_baseline: int, opts: ClaimOptions) -> Evidence:
    kind = _check_kind(kind)
    n_baseline = check_count(n_baseline, "n_baseline (draws of random matrices)", minimum=20)
    if isinstance(min_ratio, bool) or not isinstance(min_ratio, (int, float)) or not min_ratio >= 0:
        raise MiAssertInputError(f"min_ratio must be a number >= 0; got {min_ratio!r}")
    (l1, h1), (l2, h2) = _check_pair(handle, source, target)
    w = handle.weights()
    factors = (*_factors(w, l1, h1, "left", kind), *_factors(w, l2, h2, "right", kind))
    score = float(_scores(*factors))
    name = f"L{l1}H{h1} -> L{l2}H{h2}"
    metric = f"{kind.upper()}-composition score"
    model_seed = model_seed_of(handle)
    alpha = opts.alpha
    members: list[ClaimSpec] = []
    baselines: dict[int, dict[str, float]] = {}
    first_base: np.ndarray | None = None
    for seed in opts.seeds:
        base = baseline_scores(tuple(f.shape for f in factors), n_baseline, seed)
        first_base = base if first_base is None else first_base
        quantile = float(np.quantile(base, 1 - alpha, method="higher"))
        base_mean = float(base.mean())
        threshold = max(quantile, float(min_ratio) * base_mean)
        p_mc = float((1 + np.sum(base >= score)) / (n_baseline + 1))
        baselines[seed] = {"mean": base_mean, "std": float(base.std()), "quantile": quantile,
                           "threshold": threshold, "p": p_mc}
        members.append(ClaimSpec(
            f"{name} {kind.upper()}-composition (baseline seed {seed})", metric,
            {(seed, model_seed): Fixed(score, n_units=n_baseline, unit=BASELINE_UNIT)},
            threshold, "greater", n_resamples=opts.n_resamples, min_units=20,
            value_range=(0.0, 1.0), unit=BASELINE_UNIT,
            settings={"interval": "none: the score is a deterministic function of the weights",
                      "threshold": f"max(baseline {1 - alpha:.0%} quantile, {min_ratio:g} x "
                                   "baseline mean)"},
            details={"baseline mean": base_mean, "baseline std": float(base.std()),
                     f"baseline {1 - alpha:.0%} quantile": quantile,
                     "ratio (score / baseline mean)": score / base_mean,
                     "p_value (Monte Carlo)": p_mc}))
    assert first_base is not None
    b0 = baselines[opts.seeds[0]]
    all_scores = composition_scores(handle, kind)
    ranked = sorted(((float(all_scores[l1, a, l2, b]), f"L{l1}H{a} -> L{l2}H{b}")
                     for a in range(handle.n_heads) for b in range(handle.n_heads)), reverse=True)
    strongest = ", ".join(f"{lab}: {val:.3f}" for val, lab in ranked[:4])
    ev = all_of(
        members, claim=f"{name} {kind.upper()}-composition", alpha=alpha,
        settings={"kind": kind, "source": f"L{l1}H{h1}", "target": f"L{l2}H{h2}",
                  "min_ratio": min_ratio, "n_baseline": n_baseline, "seeds": list(opts.seeds),
                  "baseline": "iid Gaussian matrices of the same shapes"},
        model_info=handle.describe(),
        details={f"strongest {kind.upper()}-composition into layer {l2}": strongest},
        figures={
            "composition_scores": {
                "kind": "heatmap", "data": all_scores[l1, :, l2, :].numpy(),
                "xlabel": f"layer {l2} head", "ylabel": f"layer {l1} head",
                "title": f"{kind.upper()}-composition scores, layer {l1} -> layer {l2}"},
            "baseline": {"kind": "hist", "data": [first_base], "labels": ["random baseline"],
                         "xlabel": f"{kind.upper()}-composition score", "ylabel": "draws",
                         "title": f"random baseline vs {name}", "threshold": b0["threshold"],
                         "marker": score},
        })
    hint = (f"{name}: score {score:.4f} vs random baseline mean {b0['mean']:.4f} (ratio "
            f"{score / b0['mean']:.2f}, needs > {min_ratio:g}) and {1 - alpha:.0%} quantile "
            f"{b0['quantile']:.4f}. Strongest {kind.upper()}-composition pairs from layer {l1} "
            f"into layer {l2}: {strongest}")
    return ev.with_context(hint=hint)


def check_composition(
    model: Any,
    source: Any,
    target: Any,
    kind: str = "k",
    min_ratio: float = 1.5,
    n_baseline: int = 200,
    *,
    alpha: float = 0.05,
    seeds: int | Sequence[int] | None = None,
    seed: int | None = None,
) -> Evidence:
    """Evidence for: head ``source`` Q-, K- or V-composes with the later head ``target``.

    Passes when the composition score exceeds both the ``1 - alpha`` quantile of the random
    baseline (``n_baseline`` seeded draws of Gaussian matrices of the same shapes) and
    ``min_ratio`` x the baseline mean. The score is a deterministic function of the weights (a
    :class:`~mi_assert.stats.statistic.Fixed` statistic: zero-width interval, bound = score);
    ``threshold`` is the larger of the two bars and ``n`` counts the random-baseline draws.
    ``seeds`` (alias ``seed``) seed the baseline draws; with several seeds every baseline must
    be beaten (one member per seed, the deciding one is the headline). Never raises on a
    failed claim (see :func:`assert_composition`).
    """
    handle = resolve_model(model)
    opts = claim_options(seeds=resolve_seeds(seeds, seed), alpha=alpha)
    return _composition_claim(handle, source, target, kind, min_ratio, n_baseline, opts)


assert_composition = asserting(check_composition)


