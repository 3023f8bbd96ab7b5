"""The SAE engine's cluster bootstrap: BCa like the statistics engine, honest coverage."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from mi_assert.sae.resample import (
    JACKKNIFE_GROUPS,
    WeightedBootstrap,
    dead_fraction_statistic,
    ratio_of_sums,
)


def test_bca_equals_scipy_on_the_same_resamples():
    """Fed scipy's own bootstrap distribution of a mean, the quantiles are scipy's BCa interval."""
    x = np.random.default_rng(0).gamma(2.0, size=40)  # skewed: BCa differs from percentile
    wb = WeightedBootstrap(ratio_of_sums(x, np.ones_like(x)), x.size, n_resamples=2000, seed=1)
    ref = stats.bootstrap((x,), np.mean, n_resamples=4000, confidence_level=0.9, method="BCa",
                          random_state=np.random.default_rng(2), vectorized=True)
    wb.dist = np.asarray(ref.bootstrap_distribution)
    res = wb.result(threshold=None, alpha=0.1)
    assert res.method.startswith("BCa")
    assert res.low == pytest.approx(ref.confidence_interval.low, rel=1e-12)
    assert res.high == pytest.approx(ref.confidence_interval.high, rel=1e-12)
    percentile = np.quantile(wb.dist, [0.05, 0.95])
    assert abs(res.low - percentile[0]) > 1e-4  # the correction is doing something here


def test_own_resamples_agree_with_scipy_bca():
    x = np.random.default_rng(3).gamma(2.0, size=60)
    wb = WeightedBootstrap(ratio_of_sums(x, np.ones_like(x)), x.size, n_resamples=20000, seed=4)
    ref = stats.bootstrap((x,), np.mean, n_resamples=20000, confidence_level=0.9, method="BCa",
                          random_state=np.random.default_rng(5), vectorized=True)
    res = wb.result(threshold=None, alpha=0.1)
    width = ref.confidence_interval.high - ref.confidence_interval.low
    assert abs(res.low - ref.confidence_interval.low) < 0.03 * width
    assert abs(res.high - ref.confidence_interval.high) < 0.03 * width


def test_grouped_jackknife_matches_delete_one_when_groups_are_single_units():
    x = np.random.default_rng(6).gamma(2.0, size=JACKKNIFE_GROUPS * 3)
    wb = WeightedBootstrap(ratio_of_sums(x, np.ones_like(x)), x.size, n_resamples=200, seed=0)
    assert np.isfinite(wb.acceleration) and abs(wb.acceleration) < 0.05  # skew / sqrt(n) scale


def test_one_sided_bound_covers_a_ratio_of_means():
    """The lower 95% bound of a ratio of means lies below the true ratio in ~95% of draws."""
    true_ratio, misses, draws = 0.5, 0, 200
    rng = np.random.default_rng(7)
    for draw in range(draws):
        den = rng.gamma(3.0, size=30)
        num = true_ratio * den + rng.normal(0.0, 0.3, size=30) * den
        res = WeightedBootstrap(ratio_of_sums(num, den), 30, n_resamples=1000, seed=draw).result(
            threshold=None, alpha=0.05)
        misses += res.bound > true_ratio
    assert misses / draws <= 0.09  # nominal 0.05; binomial sd at n=200 is 0.015


def test_dead_fraction_uses_the_conservative_percentile_bound():
    fired = np.random.default_rng(8).random((20, 50)) < 0.08
    stat = dead_fraction_statistic(fired)
    a = WeightedBootstrap(stat, 20, seed=3, method="percentile").result(threshold=0.5, alternative="less")
    b = WeightedBootstrap(stat, 20, seed=3, method="percentile").result(threshold=0.5, alternative="less")
    assert a == b and a.method.startswith("percentile")
    assert a.bound > a.estimate + 0.02  # (the interval may sit wholly above the estimate)
    # BCa here would correct the upward resampling bias onto the estimate; the guard (corrected
    # levels beyond the resamples) sends it to percentiles instead of a near-zero-width bound
    bca = WeightedBootstrap(stat, 20, seed=3).result(threshold=0.5, alternative="less")
    assert bca.bound > bca.estimate + 0.02


def test_bad_method_is_named():
    from mi_assert.errors import MiAssertInputError

    with pytest.raises(MiAssertInputError, match="'BCa' or 'percentile'"):
        WeightedBootstrap(dead_fraction_statistic(np.ones((3, 2), bool)), 3, method="bca")
