"""The one bootstrap engine: equal to scipy, guards, levels, clustering."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps

from mi_assert.errors import MiAssertInputError
from mi_assert.stats import AUROC, CountWeighted, Fixed, Mean, RatioOfMeans, Resampled, bootstrap
from mi_assert.stats.bootstrap import bootstrap_mean, clears


def _scipy_ci(data, statistic, seed, level=0.95, method="BCa", batch=None):
    res = sps.bootstrap(data, statistic, n_resamples=2000, confidence_level=level, method=method,
                        random_state=np.random.default_rng(seed), vectorized=True, batch=batch)
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


@pytest.mark.parametrize("seed", [0, 7])
def test_mean_equals_scipy_bca_at_both_levels(seed):
    x = np.random.default_rng(seed).exponential(size=40)
    res = bootstrap_mean(x, threshold=1.0, seed=seed)
    low, high = _scipy_ci((x,), np.mean, seed)
    assert res.low == pytest.approx(low, abs=1e-12) and res.high == pytest.approx(high, abs=1e-12)
    one_low, one_high = _scipy_ci((x,), np.mean, seed, level=0.90)
    assert res.bound == pytest.approx(one_low, abs=1e-12)
    less = bootstrap_mean(x, threshold=1.0, seed=seed, alternative="less")
    assert less.bound == pytest.approx(one_high, abs=1e-12)


def test_ratio_of_means_equals_scipy_paired_index_bootstrap():
    rng = np.random.default_rng(3)
    num, den = rng.normal(1, 1, 25), rng.normal(2, 0.3, 25)

    def ratio(idx, axis=-1):
        i = idx.astype(np.int64)
        return num[i].mean(axis) / den[i].mean(axis)

    res = bootstrap(RatioOfMeans(num, den), threshold=0.0, seed=5)
    low, high = _scipy_ci((np.arange(25.0),), ratio, 5)
    assert (res.low, res.high) == pytest.approx((low, high), abs=1e-12)
    assert res.estimate == pytest.approx(num.mean() / den.mean())


def test_auroc_equals_scipy_two_sample_percentile():
    rng = np.random.default_rng(1)
    pos, neg = rng.normal(1, 1, 30), rng.normal(0, 1, 20)

    def auc(ip, ineg, axis=-1):
        p, n = pos[ip.astype(int)], neg[ineg.astype(int)]
        wins = (p[..., :, None] > n[..., None, :]) + 0.5 * (p[..., :, None] == n[..., None, :])
        return wins.mean(axis=(-1, -2))

    res = bootstrap(AUROC(pos, neg), threshold=0.5, seed=2)
    low, high = _scipy_ci((np.arange(30.0), np.arange(20.0)), auc, 2, method="percentile", batch=250)
    assert (res.low, res.high) == pytest.approx((low, high), abs=1e-12)
    assert res.n == 50


def test_count_weighted_equals_mean_for_a_mean():
    x = np.random.default_rng(0).normal(size=30)
    a = bootstrap(Mean(x), seed=1, threshold=0.0)
    b = bootstrap(CountWeighted(lambda w: (w @ x) / w.sum(1), 30), seed=1, threshold=0.0)
    assert (a.low, a.high, a.bound) == pytest.approx((b.low, b.high, b.bound), abs=1e-12)


def test_one_sided_bound_is_one_side_of_the_wider_interval_and_direction_matters():
    x = np.random.default_rng(4).normal(0.5, 1, 30)
    g = bootstrap_mean(x, threshold=0.0, alternative="greater")
    ls = bootstrap_mean(x, threshold=1.0, alternative="less")
    assert g.low < g.bound < g.estimate < ls.bound < g.high
    # a 90% one-sided bound would sit closer to the estimate than the 95% one
    loose = bootstrap_mean(x, threshold=0.0, alpha=0.10)
    assert g.bound < loose.bound


def test_same_resamples_read_at_any_level():
    dist = Resampled(Mean(np.random.default_rng(0).normal(size=30)), seed=3)
    wide, narrow = dist.result(0.0, "greater", 0.01), dist.result(0.0, "greater", 0.05)
    assert wide.bound < narrow.bound and wide.estimate == narrow.estimate


def test_degenerate_sample_has_zero_width_interval():
    res = bootstrap_mean(np.full(10, 0.7), threshold=0.5)
    assert res.method == "degenerate" and res.low == res.high == res.bound == 0.7
    assert res.passes()


def test_estimate_always_inside_interval_and_bound_never_beyond_it():
    # every resample lies above the estimate (dropping units can only raise the statistic)
    fired = np.eye(12)
    stat = CountWeighted(lambda w: ((w @ fired) == 0).mean(1), 12, method="percentile")
    res = bootstrap(stat, threshold=0.5, alternative="less")
    assert res.low <= res.estimate <= res.high
    assert res.bound >= res.estimate


def test_fixed_value_has_no_sampling_error():
    res = bootstrap(Fixed(0.3, n_units=200, unit="baseline draws"), threshold=0.2)
    assert (res.low, res.high, res.bound, res.n) == (0.3, 0.3, 0.3, 200)


def test_duplicated_units_are_merged_into_clusters():
    x = np.arange(10.0)
    units = [i // 2 for i in range(10)]  # every value twice... as pairs of distinct values
    stat = Mean(x, units=units)
    assert stat.n_units == 5 and stat.n_samples == 10
    copies = Mean(np.r_[x, x], units=list(range(10)) * 2)
    plain = Mean(x)
    a, b = bootstrap(copies, seed=0), bootstrap(plain, seed=0)
    assert copies.n_units == 10
    assert (a.estimate, a.low, a.high) == pytest.approx((b.estimate, b.low, b.high), abs=1e-12)


def test_clears_is_strict():
    assert clears(0.5, 0.4, "greater") and not clears(0.4, 0.4, "greater")
    assert clears(0.3, 0.4, "less") and not clears(0.4, 0.4, "less")


@pytest.mark.parametrize("bad", [[1.0, np.nan], [], "abc"])
def test_bad_samples_are_refused(bad):
    with pytest.raises(MiAssertInputError):
        bootstrap_mean(bad)


@pytest.mark.parametrize("kwargs", [{"alpha": 0.5}, {"alpha": 0}, {"alternative": "two-sided"},
                                    {"n_resamples": 10}])
def test_bad_settings_are_refused(kwargs):
    with pytest.raises(MiAssertInputError):
        bootstrap_mean(np.arange(10.0), **kwargs)
