"""Bootstrap confidence intervals and one-sided bounds over per-prompt scores."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import stats

from mi_assert.errors import MiAssertInputError

Alternative = Literal["greater", "less"]


@dataclass(frozen=True)
class BootstrapResult:
    """A point estimate with a two-sided interval and the one-sided bound used for verdicts.

    ``bound`` is the lower confidence bound (``alternative="greater"``: the claim is that the
    statistic exceeds a threshold) or the upper bound (``"less"``), at level ``1 - alpha``.
    ``p_value`` is the bootstrap p-value of the one-sided test against ``threshold``.
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
        if self.alternative == "greater":
            return self.bound > self.threshold
        return self.bound < self.threshold


def bootstrap_mean(
    samples: np.ndarray | list[float],
    *,
    threshold: float | None = None,
    alternative: Alternative = "greater",
    alpha: float = 0.05,
    n_resamples: int = 2000,
    seed: int = 0,
    statistic: Callable[..., np.ndarray] | None = None,
) -> BootstrapResult:
    """Bootstrap the mean (or ``statistic``) of per-prompt ``samples``.

    Uses :func:`scipy.stats.bootstrap` (BCa, seeded, so the same inputs give the same
    result). The one-sided bound is the ``alpha`` (or ``1-alpha``) percentile of the bootstrap
    distribution, i.e. one side of a ``1 - 2*alpha`` two-sided interval. The reported
    interval is the two-sided ``1 - alpha`` interval. Degenerate samples (all identical, which
    makes scipy return NaN) get a zero-width interval at the value.
    """
    if not 0 < alpha < 0.5:
        raise MiAssertInputError(f"alpha must lie in (0, 0.5); got {alpha}")
    if alternative not in ("greater", "less"):
        raise MiAssertInputError(f"alternative {alternative!r}: allowed 'greater' or 'less'")
    x = np.asarray(samples, dtype=np.float64).ravel()
    if x.size == 0:
        raise MiAssertInputError("no samples: need at least one per-prompt score")
    if not np.all(np.isfinite(x)):
        raise MiAssertInputError(
            f"{int((~np.isfinite(x)).sum())} of {x.size} per-prompt scores are NaN/inf; "
            "check the model's activations and the metric"
        )
    stat = statistic or (lambda a, axis=-1: np.mean(a, axis=axis))
    estimate = float(stat(x))
    if x.size < 2 or np.ptp(x) == 0:
        low = high = bound = estimate
        method = "degenerate"
        dist = None
    else:
        res = stats.bootstrap(
            (x,), stat, n_resamples=n_resamples, confidence_level=1 - alpha,
            method="BCa", random_state=np.random.default_rng(seed), vectorized=True,
        )
        low, high = float(res.confidence_interval.low), float(res.confidence_interval.high)
        dist = np.asarray(res.bootstrap_distribution)
        # the one-sided bound: one side of the 1 - 2*alpha BCa interval of the same resamples
        # (n_resamples=0 reuses res's bootstrap distribution instead of drawing it again)
        one = stats.bootstrap(
            (x,), stat, n_resamples=0, bootstrap_result=res, confidence_level=1 - 2 * alpha,
            method="BCa", vectorized=True,
        )
        bound = float(one.confidence_interval.low if alternative == "greater"
                      else one.confidence_interval.high)
        method = "BCa"
        if not np.isfinite([low, high, bound]).all():  # BCa can fail on near-degenerate data
            q = np.quantile(dist, [alpha / 2, 1 - alpha / 2, alpha, 1 - alpha])
            low, high = float(q[0]), float(q[1])
            bound = float(q[2] if alternative == "greater" else q[3])
            method = "percentile"
    return BootstrapResult(
        estimate=estimate, low=low, high=high, bound=bound, n=int(x.size), alpha=alpha,
        alternative=alternative, threshold=threshold,
        p_value=bootstrap_p_value(estimate, dist, threshold, alternative), method=method,
    )


def bootstrap_p_value(estimate: float, dist: np.ndarray | None, threshold: float | None,
                      alternative: Alternative) -> float | None:
    """One-sided bootstrap p-value: the share of resamples on the wrong side of ``threshold``
    (+1 corrected); without a distribution (degenerate sample) 0 or 1 by the estimate alone."""
    if threshold is None:
        return None
    if dist is None:
        ok = estimate > threshold if alternative == "greater" else estimate < threshold
        return 0.0 if ok else 1.0
    worse = dist <= threshold if alternative == "greater" else dist >= threshold
    return float((worse.sum() + 1) / (dist.size + 1))
