"""The one bootstrap engine: a row statistic in, an interval and a one-sided bound out.

:func:`bootstrap` validates its inputs once, draws the resamples and returns a
:class:`Resampled` distribution; :meth:`Resampled.result` reads a :class:`BootstrapResult` off
it at any level ``alpha`` (a Holm family re-reads the same resamples at each member's level).

The algorithm is :func:`scipy.stats.bootstrap`'s, step for step: resample indices with
``rng.integers(0, n, (batch, n))`` per stratum and batch (the same stream), BCa from the share
of resamples below the estimate and a delete-one jackknife acceleration (scipy's formulas,
``tests/stats`` checks equality with scipy to 1e-12). The reported interval is the two-sided
``1 - alpha`` interval; the **bound** used for verdicts is one side of the ``1 - 2 alpha``
interval of the same resamples (the lower side for ``"greater"`` claims, the upper for
``"less"``). Guards:

* a sample with nothing to vary (every unit identical) or a distribution of one value gives a
  zero-width interval at the estimate (``method="degenerate"``);
* resamples where the statistic is undefined (non-finite) are dropped;
* where BCa is undefined or reaches past the resamples (a corrected level below ``1/B`` or
  above ``1 - 1/B``) the percentile interval is used; ``method`` says which was used.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import special

from mi_assert.errors import MiAssertInputError
from mi_assert.stats.statistic import FloatArray, Mean, RowStatistic

Alternative = Literal["greater", "less"]
ALTERNATIVES: tuple[Alternative, ...] = ("greater", "less")


def check_alpha(alpha: object) -> float:
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float, np.floating)) or not 0 < float(alpha) < 0.5:
        raise MiAssertInputError(f"alpha must be a number in (0, 0.5); got {alpha!r}")
    return float(alpha)


def check_alternative(alternative: object) -> Alternative:
    if alternative not in ALTERNATIVES:
        raise MiAssertInputError(f"alternative {alternative!r}: allowed 'greater' or 'less'")
    return "greater" if alternative == "greater" else "less"


def check_n_resamples(n_resamples: object) -> int:
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, (int, np.integer)) or int(n_resamples) < 100:
        raise MiAssertInputError(f"n_resamples must be an int >= 100; got {n_resamples!r}")
    return int(n_resamples)


@dataclass(frozen=True)
class BootstrapResult:
    """A point estimate with a two-sided interval and the one-sided bound used for verdicts.

    ``bound`` is the lower confidence bound (``alternative="greater"``: the claim is that the
    statistic exceeds a threshold) or the upper bound (``"less"``), at level ``1 - alpha``.
    ``p_value`` is the bootstrap p-value of the one-sided test against ``threshold``; ``n`` the
    number of independent units resampled.
    """

    estimate: float
    low: float
    high: float
    bound: float
    n: int
    alpha: float
    alternative: Alternative
    threshold: float | None
    p_value: float | None
    method: str

    def passes(self) -> bool:
        if self.threshold is None:
            raise MiAssertInputError("no threshold set: cannot decide a verdict")
        return clears(self.bound, self.threshold, self.alternative)


def clears(bound: float, threshold: float, alternative: Alternative) -> bool:
    """The verdict rule, in one place: the bound lies strictly beyond the threshold."""
    return bool(bound > threshold if alternative == "greater" else bound < threshold)


def _counts(idx: np.ndarray, k: int) -> FloatArray:
    """Index resamples ``[B, m]`` of ``k`` units -> count weights ``[B, k]``."""
    b = idx.shape[0]
    flat = (idx + np.arange(b)[:, None] * k).ravel()
    return np.bincount(flat, minlength=b * k).reshape(b, k).astype(np.float64)


class Resampled:
    """The bootstrap distribution of one row statistic (drawn once, read at any level)."""

    def __init__(self, statistic: RowStatistic, *, n_resamples: int = 2000, seed: int = 0) -> None:
        self.statistic = statistic
        self.n = statistic.n_units
        self.estimate = statistic.estimate()
        if not np.isfinite(self.estimate):
            raise MiAssertInputError(
                f"the {statistic.name} is undefined (NaN/inf) on the sample: e.g. a zero "
                "denominator or zero variance; check the inputs")
        strata = statistic.strata
        self.dist: FloatArray = np.array([self.estimate])
        self.acceleration = float("nan")
        if statistic.constant() or min(strata) < 2:
            return
        rng = np.random.default_rng(seed)
        step = statistic.batch or n_resamples
        parts = []
        for start in range(0, n_resamples, step):
            size = min(step, n_resamples - start)
            weights = [_counts(rng.integers(0, k, (size, k)), k) for k in strata]
            parts.append(statistic.of_unit_weights(*weights))
        dist = np.concatenate(parts)
        dist = dist[np.isfinite(dist)]
        self.dist = dist if dist.size else self.dist
        if statistic.method == "BCa":
            self.acceleration = _jackknife_acceleration(statistic)

    @property
    def degenerate(self) -> bool:
        return bool(self.dist.size == 1 or np.ptp(self.dist) == 0)

    def quantiles(self, levels: list[float]) -> tuple[list[float], str]:
        """BCa quantiles at ``levels`` (percentile where BCa is undefined or unresolvable)."""
        dist, est, a_hat = self.dist, self.estimate, self.acceleration
        if self.statistic.method == "BCa" and np.isfinite(a_hat):
            z0 = special.ndtri(((dist < est).sum() + (dist <= est).sum()) / (2.0 * dist.size))
            z = special.ndtri(np.asarray(levels))
            adjusted = special.ndtr(z0 + (z0 + z) / (1 - a_hat * (z0 + z)))
            resolvable = 1.0 / dist.size
            if (np.isfinite(z0) and np.all(np.isfinite(adjusted))
                    and np.all((adjusted >= resolvable) & (adjusted <= 1 - resolvable))):
                return [float(np.percentile(dist, 100 * q)) for q in adjusted], "BCa"
        return [float(np.percentile(dist, 100 * q)) for q in levels], "percentile"

    def result(self, threshold: float | None, alternative: Alternative = "greater",
               alpha: float = 0.05) -> BootstrapResult:
        alpha = check_alpha(alpha)
        alternative = check_alternative(alternative)
        if self.degenerate:
            low = high = bound = self.estimate
            method = "degenerate"
        else:
            (low, high, lower, upper), method = self.quantiles(
                [alpha / 2, 1 - alpha / 2, alpha, 1 - alpha])
            bound = lower if alternative == "greater" else upper
            # a biased resampling distribution can sit wholly on one side of the estimate: the
            # interval always holds the estimate and the bound never lies beyond it
            low, high = min(low, self.estimate), max(high, self.estimate)
            bound = min(bound, self.estimate) if alternative == "greater" else max(bound, self.estimate)
        return BootstrapResult(
            estimate=self.estimate, low=low, high=high, bound=bound, n=self.n, alpha=alpha,
            alternative=alternative, threshold=threshold, method=method,
            p_value=bootstrap_p_value(self.estimate, None if self.degenerate else self.dist,
                                      threshold, alternative),
        )


def _jackknife_acceleration(statistic: RowStatistic) -> float:
    """scipy's BCa acceleration: delete-one jackknife per stratum, summed over strata."""
    strata = statistic.strata
    nums, dens = 0.0, 0.0
    for j, k in enumerate(strata):
        weights = [np.ones((k, m)) for m in strata]
        weights[j] = 1.0 - np.eye(k)
        theta = statistic.of_unit_weights(*weights)
        if not np.all(np.isfinite(theta)):
            return float("nan")
        u = (k - 1) * (theta.mean() - theta)
        nums += float((u**3).sum()) / k**3
        dens += float((u**2).sum()) / k**2
    den = 6.0 * dens**1.5  # can underflow to 0 for a near-constant statistic
    return float(nums / den) if den > 0 else 0.0


def bootstrap(statistic: RowStatistic, *, threshold: float | None = None,
              alternative: Alternative = "greater", alpha: float = 0.05,
              n_resamples: int = 2000, seed: int = 0) -> BootstrapResult:
    """Bootstrap any row statistic (see the module docstring)."""
    return Resampled(statistic, n_resamples=check_n_resamples(n_resamples), seed=seed).result(
        threshold, alternative, alpha)


def bootstrap_mean(samples: object, *, threshold: float | None = None,
                   alternative: Alternative = "greater", alpha: float = 0.05,
                   n_resamples: int = 2000, seed: int = 0) -> BootstrapResult:
    """Bootstrap the mean of per-unit ``samples`` (BCa, seeded: same inputs, same result)."""
    check_alpha(alpha)
    check_alternative(alternative)
    return bootstrap(Mean(samples), threshold=threshold, alternative=alternative, alpha=alpha,
                     n_resamples=n_resamples, seed=seed)


def bootstrap_p_value(estimate: float, dist: np.ndarray | None, threshold: float | None,
                      alternative: Alternative) -> float | None:
    """One-sided bootstrap p-value: the share of resamples on the wrong side of ``threshold``
    (+1 corrected); without a distribution (degenerate sample) 0 or 1 by the estimate alone."""
    if threshold is None:
        return None
    if dist is None:
        return 0.0 if clears(estimate, threshold, alternative) else 1.0
    worse = dist <= threshold if alternative == "greater" else dist >= threshold
    return float((worse.sum() + 1) / (dist.size + 1))
