"""Cluster bootstrap for statistics that are not plain means (ratios of sums, dead fractions).

:func:`mi_assert.stats.bootstrap_mean` handles per-prompt means (BCa). Ratios such as explained
variance (``1 - sum err / sum dev``) or CE loss recovered (a ratio of mean losses) and the
fraction of never-firing features are recomputed on each resample of whole prompts: tokens of one
prompt are correlated, so prompts are the resampled unit. A resample is a vector of multinomial
counts over prompts, so every statistic here is written in terms of count-weighted sums.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import special

from mi_assert.errors import MiAssertInputError
from mi_assert.stats.bootstrap import Alternative, BootstrapResult, bootstrap_p_value

#: a statistic of count weights ``[B, n_units]`` -> ``[B]`` (weights of ones = the sample itself)
WeightedStatistic = Callable[[np.ndarray], np.ndarray]


def resample_counts(rng: np.random.Generator, n_units: int, size: int) -> np.ndarray:
    """``size`` bootstrap resamples of ``n_units`` units as count vectors ``[size, n_units]``."""
    idx = rng.integers(0, n_units, size=(size, n_units))
    flat = (idx + np.arange(size)[:, None] * n_units).ravel()
    return np.bincount(flat, minlength=size * n_units).reshape(size, n_units).astype(np.float64)


#: above this many units the jackknife for the BCa acceleration deletes groups of units
JACKKNIFE_GROUPS = 500


class WeightedBootstrap:
    """The bootstrap distribution of ``statistic`` over resampled units (prompts), computed once.

    :meth:`result` turns it into a :class:`BootstrapResult` at any level ``alpha`` (a Holm
    family re-reads the same distribution at its member's level). Intervals are BCa, as in
    :func:`~mi_assert.stats.bootstrap_mean` (scipy's formulas: bias correction from the share of
    resamples below the estimate, acceleration from a delete-one-prompt jackknife, or
    delete-a-group with more than ``JACKKNIFE_GROUPS`` prompts): the two-sided ``1 - alpha``
    interval, and the ``bound`` is one side of the ``1 - 2 alpha`` interval. Where BCa is
    undefined or reaches past the resamples (a corrected level below ``1 / n_resamples`` or
    above ``1 - 1 / n_resamples``: nearly every resample on one side of the estimate) the
    percentile interval is used, and ``method`` says which. ``method="percentile"`` asks for
    percentiles outright (the dead fraction: resampling can only drop prompts, so its resamples
    sit above the estimate and BCa would pull the upper bound down onto the estimate; the
    percentile bound is the conservative one). ``p_value``: the share of resamples on the wrong
    side of the threshold (+1 corrected).
    """

    def __init__(self, statistic: WeightedStatistic, n_units: int, *, n_resamples: int = 2000,
                 seed: int = 0, chunk: int = 500, method: str = "BCa") -> None:
        if n_units < 1:
            raise MiAssertInputError("no samples: need at least one prompt")
        if method not in ("BCa", "percentile"):
            raise MiAssertInputError(f"method={method!r}: allowed 'BCa' or 'percentile'")
        self.method = method
        self.n = n_units
        self.estimate = float(statistic(np.ones((1, n_units)))[0])
        if not np.isfinite(self.estimate):
            raise MiAssertInputError(
                "the statistic is NaN/inf on the sample (e.g. CE loss zero-ablated equals the "
                "clean CE loss, or activations with zero variance); check the inputs"
            )
        dist = np.array([self.estimate])
        self.acceleration = float("nan")
        if n_units >= 2:
            rng = np.random.default_rng(seed)
            parts = [np.asarray(statistic(resample_counts(rng, n_units, min(chunk, n_resamples - start))),
                                dtype=np.float64)
                     for start in range(0, n_resamples, chunk)]
            dist = np.concatenate(parts)
            dist = dist[np.isfinite(dist)]  # a resample can degenerate (a zero denominator)
            if dist.size == 0:
                dist = np.array([self.estimate])
            if n_units >= 3 and method == "BCa":
                self.acceleration = _jackknife_acceleration(statistic, n_units, chunk)
        self.dist = dist

    def _quantiles(self, levels: list[float]) -> tuple[list[float], str]:
        """BCa quantiles of the distribution at ``levels`` (percentile where BCa is undefined)."""
        dist, est, a_hat = self.dist, self.estimate, self.acceleration
        z0 = special.ndtri(((dist < est).sum() + (dist <= est).sum()) / (2.0 * dist.size))
        if self.method == "BCa" and np.isfinite(z0) and np.isfinite(a_hat):
            z = special.ndtri(np.asarray(levels))
            adjusted = special.ndtr(z0 + (z0 + z) / (1 - a_hat * (z0 + z)))
            resolvable = 1.0 / dist.size
            if np.all(np.isfinite(adjusted)) and np.all((adjusted >= resolvable) & (adjusted <= 1 - resolvable)):
                return [float(q) for q in np.quantile(dist, adjusted)], "BCa (prompts resampled)"
        return [float(q) for q in np.quantile(dist, levels)], "percentile (prompts resampled)"

    def result(self, threshold: float | None, alternative: Alternative = "greater",
               alpha: float = 0.05) -> BootstrapResult:
        if not 0 < alpha < 0.5:
            raise MiAssertInputError(f"alpha must lie in (0, 0.5); got {alpha}")
        est, dist = self.estimate, self.dist
        if dist.size == 1 or np.ptp(dist) == 0:
            low = high = bound = est
            method = "degenerate"
        else:
            (low, high, lower, upper), method = self._quantiles(
                [alpha / 2, 1 - alpha / 2, alpha, 1 - alpha])
            bound = lower if alternative == "greater" else upper
        return BootstrapResult(
            estimate=est, low=low, high=high, bound=bound, n=self.n, alpha=alpha,
            alternative=alternative, threshold=threshold, method=method,
            p_value=bootstrap_p_value(est, None if method == "degenerate" else dist, threshold,
                                      alternative),
        )


def _jackknife_acceleration(statistic: WeightedStatistic, n_units: int, chunk: int) -> float:
    """BCa acceleration ``sum(d^3) / (6 sum(d^2)^1.5)``, ``d`` = jackknife mean - jackknife values.

    Delete-one-unit weights (a row of ones with one zero), or with many units delete-a-group
    (``JACKKNIFE_GROUPS`` contiguous groups of near-equal size: the grouped jackknife).
    """
    n_groups = min(n_units, JACKKNIFE_GROUPS)
    group_of = np.arange(n_units) * n_groups // n_units
    values = []
    for start in range(0, n_groups, chunk):
        groups = np.arange(start, min(start + chunk, n_groups))
        weights = (group_of[None, :] != groups[:, None]).astype(np.float64)
        values.append(np.asarray(statistic(weights), dtype=np.float64))
    jack = np.concatenate(values)
    if not np.all(np.isfinite(jack)):
        return float("nan")
    d = jack.mean() - jack
    den = 6.0 * (d @ d) ** 1.5
    return float((d**3).sum() / den) if den > 0 else 0.0


def bootstrap_weighted(
    statistic: WeightedStatistic,
    n_units: int,
    *,
    threshold: float | None,
    alternative: Alternative = "greater",
    alpha: float = 0.05,
    n_resamples: int = 2000,
    seed: int = 0,
) -> BootstrapResult:
    """BCa bootstrap of ``statistic`` over ``n_units`` resampled units (prompts) (see
    :class:`WeightedBootstrap`)."""
    return WeightedBootstrap(statistic, n_units, n_resamples=n_resamples, seed=seed).result(
        threshold, alternative, alpha)


def ratio_of_sums(num: np.ndarray, den: np.ndarray, one_minus: bool = False) -> WeightedStatistic:
    """``w.num / w.den`` (or ``1 -`` it) per resample, from per-unit sums ``num``, ``den``."""
    num, den = np.asarray(num, np.float64), np.asarray(den, np.float64)

    def stat(w: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            r = (w @ num) / (w @ den)
        return 1.0 - r if one_minus else r

    return stat


def ce_recovered_statistic(clean: np.ndarray, sae: np.ndarray, zero: np.ndarray) -> WeightedStatistic:
    """(mean zero - mean sae) / (mean zero - mean clean) per resample of prompts."""
    c, s, z = (np.asarray(a, np.float64) for a in (clean, sae, zero))

    def stat(w: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return (w @ (z - s)) / (w @ (z - c))

    return stat


def dead_fraction_statistic(fired: np.ndarray) -> WeightedStatistic:
    """Share of features that fire on no token of the resampled prompts.

    Resampling can only drop prompts, so the bootstrap distribution leans towards more dead
    features: the upper bound used for ``max_dead_fraction`` is conservative.
    """
    f = np.asarray(fired, np.float64)  # [n_units, d_sae]

    def stat(w: np.ndarray) -> np.ndarray:
        return ((w @ f) == 0).mean(axis=1)

    return stat


def bootstrap_auroc(
    positive: np.ndarray,
    negative: np.ndarray,
    *,
    threshold: float | None,
    alpha: float = 0.05,
    n_resamples: int = 2000,
    seed: int = 0,
    chunk: int = 250,
) -> BootstrapResult:
    """AUROC of ``positive`` vs ``negative`` scores with a stratified percentile bootstrap.

    AUROC = P(score of a positive > score of a negative) + 0.5 P(tie) (the Mann-Whitney form).
    Positives and negatives are resampled separately (each group keeps its size).
    """
    pos, neg = np.asarray(positive, np.float64), np.asarray(negative, np.float64)
    if pos.size < 2 or neg.size < 2:
        raise MiAssertInputError(
            f"AUROC needs at least 2 positive and 2 negative prompts; got {pos.size} and {neg.size}"
        )
    wins = (pos[:, None] > neg[None, :]).astype(np.float64) + 0.5 * (pos[:, None] == neg[None, :])
    n_p, n_n = pos.size, neg.size

    def stat(wp: np.ndarray, wn: np.ndarray) -> np.ndarray:
        return np.einsum("bi,ij,bj->b", wp, wins, wn) / (n_p * n_n)

    estimate = float(stat(np.ones((1, n_p)), np.ones((1, n_n)))[0])
    rng = np.random.default_rng(seed)
    parts = []
    for start in range(0, n_resamples, chunk):
        b = min(chunk, n_resamples - start)
        wp = resample_counts(rng, n_p, b)
        wn = resample_counts(rng, n_n, b)
        parts.append(stat(wp, wn))
    dist = np.concatenate(parts)
    degenerate = bool(np.ptp(dist) == 0)
    if degenerate:
        low = high = bound = estimate
        method = "degenerate"
    else:
        q = np.quantile(dist, [alpha / 2, 1 - alpha / 2, alpha])
        low, high, bound = float(q[0]), float(q[1]), float(q[2])
        method = "percentile (stratified over prompts)"
    return BootstrapResult(
        estimate=estimate, low=low, high=high, bound=bound, n=n_p + n_n, alpha=alpha,
        alternative="greater", threshold=threshold, method=method,
        p_value=bootstrap_p_value(estimate, None if degenerate else dist, threshold, "greater"),
    )
