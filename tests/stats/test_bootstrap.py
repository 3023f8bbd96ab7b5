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
    res = bootstrap_mean(x, threshold=1.0, seed=seed, interval="BCa")
    low, high = _scipy_ci((x,), np.mean, seed)
    assert res.low == pytest.approx(low, abs=1e-12) and res.high == pytest.approx(high, abs=1e-12)
    one_low, one_high = _scipy_ci((x,), np.mean, seed, level=0.90)
    assert res.bound == pytest.approx(one_low, abs=1e-12)
    less = bootstrap_mean(x, threshold=1.0, seed=seed, alternative="less", interval="BCa")
    assert less.bound == pytest.approx(one_high, abs=1e-12)


def test_ratio_of_means_equals_scipy_paired_index_bootstrap():
    rng = np.random.default_rng(3)
    num, den = rng.normal(1, 1, 25), rng.normal(2, 0.3, 25)

    def ratio(idx, axis=-1):
        i = idx.astype(np.int64)
        return num[i].mean(axis) / den[i].mean(axis)

    res = bootstrap(RatioOfMeans(num, den), threshold=0.0, seed=5, interval="BCa")
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

    res = bootstrap(AUROC(pos, neg), threshold=0.5, seed=2, interval="BCa")
    low, high = _scipy_ci((np.arange(30.0), np.arange(20.0)), auc, 2, method="percentile", batch=250)
    assert (res.low, res.high) == pytest.approx((low, high), abs=1e-12)
    assert res.n == 50


def test_count_weighted_equals_mean_for_a_mean():
    x = np.random.default_rng(0).normal(size=30)
    a = bootstrap(Mean(x), seed=1, threshold=0.0, interval="BCa")
    b = bootstrap(CountWeighted(lambda w: (w @ x) / w.sum(1), 30), seed=1, threshold=0.0,
                  interval="BCa")
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


def test_zero_variance_sample_is_bounded_by_the_metric_range():
    res = bootstrap_mean(np.full(10, 0.7), threshold=0.5, value_range=(0.0, 1.0))
    assert res.method == "zero variance" and res.low < res.bound < res.estimate == 0.7 < res.high
    assert res.bound == pytest.approx(0.7 * 0.05 ** 0.1) and res.passes()
    assert not bootstrap_mean(np.full(10, 0.7), threshold=0.55, value_range=(0.0, 1.0)).passes()
    assert res.high == pytest.approx(1 - 0.3 * 0.025 ** 0.1)
    up = bootstrap_mean(np.full(10, 0.7), threshold=0.95, alternative="less", value_range=(0.0, 1.0))
    assert up.bound == pytest.approx(1 - 0.3 * 0.05 ** 0.1) and up.passes()
    # the p-value inverts the same bound: 0.7 alpha^(1/10) > 0.5 iff alpha > (0.5/0.7)^10
    assert res.p_value == pytest.approx((0.5 / 0.7) ** 10, rel=1e-4)
    unbounded = bootstrap_mean(np.full(10, 0.7), threshold=0.5)
    assert unbounded.low == unbounded.high == unbounded.bound == 0.7 and unbounded.passes()
    half_open = bootstrap_mean(np.full(10, 0.7), threshold=0.5, value_range=(0.0, float("inf")))
    assert half_open.high == 0.7 and half_open.low < half_open.bound < 0.7


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


# --- small-sample intervals: expanded levels, bootstrap-t, and their conservative combination


def test_expanded_level_widens_small_samples_and_vanishes_for_large_ones():
    from mi_assert.stats.bootstrap import expanded_level

    assert expanded_level(0.05, 10) < expanded_level(0.05, 30) < expanded_level(0.05, 10_000) < 0.05
    assert expanded_level(0.05, 10_000) == pytest.approx(0.05, abs=2e-4)
    assert expanded_level(0.95, 10) == pytest.approx(1 - expanded_level(0.05, 10), abs=1e-12)
    # n = 10: sqrt(10/9) t_9(0.05) = -1.932..., so the tail level is Phi(-1.932) = 0.0267
    assert expanded_level(0.05, 10) == pytest.approx(sps.norm.cdf(np.sqrt(10 / 9) * sps.t.ppf(0.05, 9)))


def _bootstrap_t_by_hand(x, seed, level, n_resamples=2000):
    idx = np.random.default_rng(seed).integers(0, x.size, (n_resamples, x.size))
    xs = x[idx]
    t = (xs.mean(1) - x.mean()) / (xs.std(1, ddof=1) / np.sqrt(x.size))
    return x.mean() - np.percentile(t, 100 * (1 - level)) * x.std(ddof=1) / np.sqrt(x.size)


@pytest.mark.parametrize("alternative", ["greater", "less"])
def test_studentized_bound_is_the_bootstrap_t_of_the_same_resamples(alternative):
    x = np.random.default_rng(11).exponential(size=25)
    res = bootstrap_mean(x, threshold=1.0, seed=4, alternative=alternative, interval="studentized")
    level = 0.05 if alternative == "greater" else 0.95
    assert res.method == "studentized"
    assert res.bound == pytest.approx(_bootstrap_t_by_hand(x, 4, level), abs=1e-12)
    assert res.low == pytest.approx(_bootstrap_t_by_hand(x, 4, 0.025), abs=1e-12)


def test_calibrated_takes_the_more_conservative_side_of_each():
    x = np.random.default_rng(2).normal(0.4, 1.0, 20)
    by = {i: bootstrap_mean(x, threshold=0.0, seed=1, interval=i)
          for i in ("expanded", "studentized", "calibrated")}
    up = {i: bootstrap_mean(x, threshold=1.0, seed=1, interval=i, alternative="less")
          for i in ("expanded", "studentized", "calibrated")}
    assert by["calibrated"].bound == min(by["expanded"].bound, by["studentized"].bound)
    assert up["calibrated"].bound == max(up["expanded"].bound, up["studentized"].bound)
    assert by["calibrated"].low == min(by["expanded"].low, by["studentized"].low)
    assert by["calibrated"].high == max(by["expanded"].high, by["studentized"].high)
    # both corrections widen scipy's BCa at n = 20
    bca = bootstrap_mean(x, threshold=0.0, seed=1, interval="BCa")
    assert by["expanded"].bound < bca.bound and by["calibrated"].bound < bca.bound


def test_clustered_mean_standard_error_counts_prompts_not_copies():
    x = np.random.default_rng(5).normal(size=15)
    twice = Mean(np.repeat(x, 2), units=np.repeat(np.arange(15), 2).tolist())
    once = bootstrap(Mean(x), threshold=0.0, seed=3, interval="studentized")
    merged = bootstrap(twice, threshold=0.0, seed=3, interval="studentized")
    assert merged.n == 15 and (merged.bound, merged.low, merged.high) == pytest.approx(
        (once.bound, once.low, once.high), abs=1e-12)


def test_ratio_and_auroc_standard_errors_match_their_closed_forms():
    rng = np.random.default_rng(8)
    num, den = rng.normal(1, 1, 20), rng.normal(2, 0.3, 20)
    r = num.mean() / den.mean()
    se = RatioOfMeans(num, den).standard_errors(np.ones((1, 20)))[0]
    assert se == pytest.approx(np.sqrt(((num - r * den) ** 2).sum() / 19 / 20) / den.mean())
    assert Mean(num).standard_errors(np.ones((1, 20)))[0] == pytest.approx(num.std(ddof=1) / np.sqrt(20))
    pos, neg = rng.normal(1, 1, 12), rng.normal(0, 1, 9)
    v10 = np.array([np.mean((p > neg) + 0.5 * (p == neg)) for p in pos])
    v01 = np.array([np.mean((pos > q) + 0.5 * (pos == q)) for q in neg])
    delong = np.sqrt(v10.var(ddof=1) / 12 + v01.var(ddof=1) / 9)
    got = AUROC(pos, neg).standard_errors(np.ones((1, 12)), np.ones((1, 9)))
    assert got is not None and got[0] == pytest.approx(delong)


def test_statistic_without_standard_error_falls_back_to_expanded_levels():
    x = np.random.default_rng(0).normal(size=20)
    res = bootstrap(CountWeighted(lambda w: (w @ x) / w.sum(1), 20), threshold=0.0, seed=1)
    assert res.method == "expanded BCa"


def test_unknown_interval_is_refused_with_the_allowed_names():
    with pytest.raises(MiAssertInputError, match="'calibrated', 'BCa', 'expanded', 'studentized'"):
        bootstrap_mean(np.arange(10.0), interval="bca")


@pytest.mark.parametrize("interval", ["calibrated", "BCa", "expanded"])
@pytest.mark.parametrize("alternative", ["greater", "less"])
def test_p_value_inverts_the_same_interval_so_it_agrees_with_the_verdict(interval, alternative):
    x = np.random.default_rng(3).normal(0.3, 1.0, 25)
    dist = Resampled(Mean(x), seed=2, interval=interval)
    for threshold in np.linspace(-0.5, 1.0, 16):
        for alpha in (0.01, 0.05, 0.2):
            res = dist.result(float(threshold), alternative, alpha)
            assert res.p_value is not None
            assert res.passes() == (res.p_value < alpha) or abs(res.p_value - alpha) < 1e-5


def test_studentized_interval_stays_within_what_the_resamples_reach():
    # 13 prompts at ~1 and 3 at ~0.5: 4 % of resamples hold only the ~1 prompts, with a near-zero
    # standard error and a huge pivot; the interval must not run to -16 on a [0, 1] score
    rng = np.random.default_rng(0)
    x = np.concatenate([1 - rng.uniform(0, 1e-4, 13), 0.5 + rng.uniform(0, 1e-2, 3)])
    dist = Resampled(Mean(x), seed=1)
    res = dist.result(0.5, "greater", 0.05)
    assert dist.dist.min() <= res.low < res.bound < res.estimate < res.high <= 1.0
