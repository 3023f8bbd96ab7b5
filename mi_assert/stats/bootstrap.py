"""The one bootstrap engine: a row statistic in, an interval and a one-sided bound out.

:func:`bootstrap` validates its inputs once, draws the resamples and returns a
:class:`Resampled` distribution; :meth:`Resampled.result` reads a :class:`BootstrapResult` off
it at any level ``alpha`` (a Holm family re-reads the same resamples at each member's level).

The resampling is :func:`scipy.stats.bootstrap`'s, step for step: indices drawn with
``rng.integers(0, n, (batch, n))`` per stratum and batch (the same stream), BCa from the share
of resamples below the estimate and a delete-one jackknife acceleration (scipy's formulas;
with ``interval="BCa"`` the interval equals scipy's to 1e-12, ``tests/stats`` checks it). The
reported interval is the two-sided ``1 - alpha`` interval; the **bound** used for verdicts is
one side of the ``1 - 2 alpha`` interval of the same resamples (the lower side for
``"greater"`` claims, the upper for ``"less"``).

``interval`` chooses how the resamples become an interval (docs/engine_size.md measures them):

* ``"BCa"``: scipy's BCa (percentile for statistics that ask for it). Too narrow at the sample
  sizes claims use: a level-0.05 bound false-passes 6.6-8 % of the time at n = 10-30.
* ``"expanded"``: the same at Hesterberg's (2015) expanded levels: the tail level whose normal
  quantile is ``sqrt(n / (n - 1)) t_{n-1}`` at the nominal level (``n`` = units of the
  smallest stratum), which undoes the percentile interval's ``z``-for-``t`` and divisor-``n``
  narrowness.
* ``"studentized"``: the bootstrap-t (its ends kept within the range of the resamples), for
  statistics with a closed-form standard error
  (:meth:`RowStatistic.standard_errors`: means and ratios of means by the delta method, AUROC
  by DeLong's placements, each per resample); ``"expanded"`` for the rest.
* ``"calibrated"`` (default): per side, the more conservative of ``"studentized"`` and
  ``"expanded"``. Each is near level on some shapes and liberal on others (bootstrap-t on
  small discrete samples, expanded BCa on skewed ones); taking the wider side keeps the
  false-pass rate at or below the better of the two.

Guards:

* a sample with nothing to vary (every unit gives the same value ``c``, or every resample the
  same statistic) has no spread to bootstrap. Its bound comes from the metric's range
  ``[lo, hi]`` instead, distribution-free: ``n`` draws all equal to ``c`` are consistent at
  level ``alpha`` with a share ``1 - alpha^(1/n)`` of mass at the far end of the range, so the
  lower bound is ``lo + (c - lo) alpha^(1/n)`` (e.g. 16 prompts all scoring 1.0 on a [0, 1]
  score support a mean above 0.83, not 1.0); ``method="zero variance"``. Where the metric has
  no limit on the claim's side (a normalised recovery, a logit difference) nothing
  distribution-free bounds it, and the sample is decided at its value: a deterministic effect
  measured identically on every one of at least ``min_units`` distinct prompts (the minimum
  is what refuses two prompts or copies of one). A :class:`Fixed` value (no sampling error)
  keeps its zero-width interval (``method="exact"``);
* resamples where the statistic is undefined (non-finite) are dropped;
* where BCa is undefined or reaches past the resamples (a corrected level below ``1/B`` or
  above ``1 - 1/B``) the percentile interval is used; ``method`` says which decided the bound.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np
from scipy import special

from mi_assert.errors import MiAssertInputError
from mi_assert.stats.statistic import FloatArray, Mean, RowStatistic

Alternative = Literal["greater", "less"]
ALTERNATIVES: tuple[Alternative, ...] = ("greater", "less")
Interval = Literal["calibrated", "BCa", "expanded", "studentized"]
INTERVALS: tuple[Interval, ...] = get_args(Interval)
DEFAULT_INTERVAL: Interval = "calibrated"
#: the bootstrap-t is used only where most resamples have a usable standard error
MIN_STUDENTIZED_SHARE = 0.5


def check_alpha(alpha: object) -> float:
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float, np.floating)) or not 0 < float(alpha) < 0.5:
        raise MiAssertInputError(f"alpha must be a number in (0, 0.5); got {alpha!r}")
    return float(alpha)


def check_alternative(alternative: object) -> Alternative:
    if alternative not in ALTERNATIVES:
        raise MiAssertInputError(f"alternative {alternative!r}: allowed 'greater' or 'less'")
    return "greater" if alternative == "greater" else "less"


def check_interval(interval: object) -> Interval:
    for name in INTERVALS:
        if interval == name:
            return name
    raise MiAssertInputError(f"interval {interval!r}: allowed {', '.join(map(repr, INTERVALS))}")


def expanded_level(level: float, n: int) -> float:
    """Hesterberg's expansion of a tail level for ``n`` units (the level itself for n < 2)."""
    if n < 2:
        return level
    tail = min(level, 1.0 - level)
    expanded = float(special.ndtr(np.sqrt(n / (n - 1.0)) * special.stdtrit(n - 1, tail)))
    return expanded if level < 0.5 else 1.0 - expanded


def check_n_resamples(n_resamples: object) -> int:
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, (int, np.integer)) or int(n_resamples) < 100:
        raise MiAssertInputError(f"n_resamples must be an int >= 100; got {n_resamples!r}")
    return int(n_resamples)


@dataclass(frozen=True)
class BootstrapResult:
    """A point estimate with a two-sided interval and the one-sided bound used for verdicts.

    ``bound`` is the lower confidence bound (``alternative="greater"``: the claim is that the
    statistic exceeds a threshold) or the upper bound (``"less"``), at level ``1 - alpha``.
    ``p_value`` is the one-sided p-value against ``threshold`` of the same interval (the least
    ``alpha`` at which the bound clears it, so ``passes()`` iff ``p_value < alpha``); ``n`` the
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

    def __init__(self, statistic: RowStatistic, *, n_resamples: int = 2000, seed: int = 0,
                 interval: Interval = DEFAULT_INTERVAL,
                 value_range: tuple[float, float] | None = None) -> None:
        self.statistic = statistic
        self.interval = check_interval(interval)
        self.value_range = value_range or (-np.inf, np.inf)
        self.n = statistic.n_units
        self.estimate = statistic.estimate()
        if not np.isfinite(self.estimate):
            raise MiAssertInputError(
                f"the {statistic.name} is undefined (NaN/inf) on the sample: e.g. a zero "
                "denominator or zero variance; check the inputs")
        strata = statistic.strata
        self.dist: FloatArray = np.array([self.estimate])
        self.acceleration = float("nan")
        #: bootstrap-t pivots and the sample's standard error (None: not studentized)
        self.pivots: FloatArray | None = None
        self.standard_error = float("nan")
        if statistic.constant() or min(strata) < 2:
            return
        studentize = self.interval in ("studentized", "calibrated")
        rng = np.random.default_rng(seed)
        step = statistic.batch or n_resamples
        parts, pivots = [], []
        for start in range(0, n_resamples, step):
            size = min(step, n_resamples - start)
            weights = [_counts(rng.integers(0, k, (size, k)), k) for k in strata]
            theta = statistic.of_unit_weights(*weights)
            parts.append(theta)
            se_b = statistic.standard_errors(*weights) if studentize else None
            if se_b is not None:
                with np.errstate(divide="ignore", invalid="ignore"):
                    pivots.append((theta - self.estimate) / se_b)
        dist = np.concatenate(parts)
        dist = dist[np.isfinite(dist)]
        self.dist = dist if dist.size else self.dist
        if statistic.method == "BCa":
            self.acceleration = _jackknife_acceleration(statistic)
        sample_se = statistic.standard_errors(*(np.ones((1, k)) for k in strata)) if pivots else None
        if sample_se is not None:
            se = float(sample_se[0])
            t = np.concatenate(pivots)
            t = t[np.isfinite(t)]
            if np.isfinite(se) and se > 0 and t.size >= MIN_STUDENTIZED_SHARE * n_resamples:
                self.pivots, self.standard_error = t, se

    @property
    def degenerate(self) -> bool:
        return bool(self.dist.size == 1 or np.ptp(self.dist) == 0)

    def _bca(self, levels: list[float]) -> tuple[list[float], str]:
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

    def _studentized(self, levels: list[float]) -> list[float]:
        """Bootstrap-t quantiles, kept within the values the resamples reach: a resample whose
        standard error is near zero (e.g. only the prompts that score exactly 1) gives a huge
        pivot, which would put the interval far outside anything the data can produce."""
        assert self.pivots is not None
        low, high = float(self.dist.min()), float(self.dist.max())
        return [min(max(float(self.estimate - np.percentile(self.pivots, 100 * (1 - q))
                              * self.standard_error), low), high) for q in levels]

    def quantiles(self, levels: list[float]) -> list[tuple[float, str]]:
        """Each level's quantile of the statistic, with the method that gave it."""
        if self.interval == "BCa":
            values, method = self._bca(levels)
            return [(v, method) for v in values]
        n_smallest = min(self.statistic.strata)
        values, method = self._bca([expanded_level(q, n_smallest) for q in levels])
        expanded = [(v, f"expanded {method}") for v in values]
        if self.interval == "expanded" or self.pivots is None:
            return expanded
        studentized = [(v, "studentized") for v in self._studentized(levels)]
        if self.interval == "studentized":
            return studentized
        # the more conservative side: further from the estimate, i.e. the wider interval
        return [min(e, s) if q < 0.5 else max(e, s)
                for q, e, s in zip(levels, expanded, studentized, strict=True)]

    def result(self, threshold: float | None, alternative: Alternative = "greater",
               alpha: float = 0.05) -> BootstrapResult:
        alpha = check_alpha(alpha)
        alternative = check_alternative(alternative)
        if self.degenerate and self.statistic.exact:
            low = high = bound = self.estimate
            method = "exact"
        elif self.degenerate:
            low, high, bound = self._zero_variance(alpha, alternative)
            method = "zero variance"
        else:
            (low, _), (high, _), lower, upper = self.quantiles(
                [alpha / 2, 1 - alpha / 2, alpha, 1 - alpha])
            bound, method = lower if alternative == "greater" else upper
            # a biased resampling distribution can sit wholly on one side of the estimate: the
            # interval always holds the estimate and the bound never lies beyond it
            low, high = min(low, self.estimate), max(high, self.estimate)
            bound = min(bound, self.estimate) if alternative == "greater" else max(bound, self.estimate)
        return BootstrapResult(
            estimate=self.estimate, low=low, high=high, bound=bound, n=self.n, alpha=alpha,
            alternative=alternative, threshold=threshold, method=method,
            p_value=self.p_value(threshold, alternative),
        )

    def _zero_variance(self, alpha: float, alternative: Alternative) -> tuple[float, float, float]:
        """Range-based interval and bound of a sample without spread (module docstring)."""
        lo, hi = self.value_range
        c, n = self.estimate, min(self.statistic.strata)
        side = lo if alternative == "greater" else hi

        def pull(end: float, level: float) -> float:
            return end + (c - end) * level ** (1.0 / n) if np.isfinite(end) else c
        return pull(lo, alpha / 2), pull(hi, alpha / 2), pull(side, alpha)

    def bound_at(self, alpha: float, alternative: Alternative) -> float:
        """The one-sided level-``alpha`` bound (any alpha in (0, 1), for inverting the test)."""
        if self.degenerate and self.statistic.exact:
            return self.estimate
        if self.degenerate:
            return self._zero_variance(alpha, alternative)[2]
        if alternative == "greater":
            return min(self.quantiles([alpha])[0][0], self.estimate)
        return max(self.quantiles([1.0 - alpha])[0][0], self.estimate)

    def p_value(self, threshold: float | None, alternative: Alternative) -> float | None:
        """The least alpha at which the bound clears ``threshold`` (the interval inverted, by
        bisection to 1e-6; resolvable down to ``1 / n_resamples``)."""
        if threshold is None:
            return None
        if self.degenerate and self.statistic.exact:
            return 0.0 if clears(self.estimate, threshold, alternative) else 1.0
        low, high = (1e-9, 1 - 1e-9) if self.degenerate else (1 / self.dist.size, 1 - 1 / self.dist.size)
        if clears(self.bound_at(low, alternative), threshold, alternative):
            return low
        if not clears(self.bound_at(high, alternative), threshold, alternative):
            return 1.0
        while high - low > 1e-6:  # the bound moves monotonically towards the estimate with alpha
            mid = 0.5 * (low + high)
            low, high = (low, mid) if clears(self.bound_at(mid, alternative), threshold,
                                             alternative) else (mid, high)
        return high


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
              n_resamples: int = 2000, seed: int = 0, interval: Interval = DEFAULT_INTERVAL,
              value_range: tuple[float, float] | None = None) -> BootstrapResult:
    """Bootstrap any row statistic (see the module docstring)."""
    return Resampled(statistic, n_resamples=check_n_resamples(n_resamples), seed=seed,
                     interval=interval, value_range=value_range).result(threshold, alternative, alpha)


def bootstrap_mean(samples: object, *, threshold: float | None = None,
                   alternative: Alternative = "greater", alpha: float = 0.05,
                   n_resamples: int = 2000, seed: int = 0,
                   interval: Interval = DEFAULT_INTERVAL,
                   value_range: tuple[float, float] | None = None) -> BootstrapResult:
    """Bootstrap the mean of per-unit ``samples`` (seeded: same inputs, same result)."""
    check_alpha(alpha)
    check_alternative(alternative)
    check_interval(interval)
    return bootstrap(Mean(samples), threshold=threshold, alternative=alternative, alpha=alpha,
                     n_resamples=n_resamples, seed=seed, interval=interval, value_range=value_range)
