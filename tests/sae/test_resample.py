"""The SAE statistics on the engine's protocol: right values, honest bounds."""

from __future__ import annotations

import numpy as np
import pytest

from mi_assert.errors import MiAssertInputError
from mi_assert.sae import resample as R
from mi_assert.stats.bootstrap import bootstrap


def test_explained_variance_is_the_pooled_formula():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(30, 5, 4))  # prompts x tokens x dims
    x_hat = x + rng.normal(scale=0.5, size=x.shape)
    dev = x - x.reshape(-1, 4).mean(0)
    err_sum = ((x - x_hat) ** 2).sum(-1).sum(1)
    dev_sum = (dev**2).sum(-1).sum(1)
    stat = R.explained_variance(err_sum, dev_sum)
    pooled = 1 - ((x - x_hat) ** 2).sum() / (dev**2).sum()
    assert stat.estimate() == pytest.approx(pooled, rel=1e-12)
    w = np.zeros((1, 30))
    w[0, :10] = 2.0  # a resample: prompts 0..9 twice each
    assert stat.of_unit_weights(w)[0] == pytest.approx(1 - err_sum[:10].sum() / dev_sum[:10].sum())


def test_ce_loss_recovered_is_a_ratio_of_means():
    from mi_assert.sae.metrics import ce_recovered

    rng = np.random.default_rng(1)
    clean = rng.uniform(0.5, 1.0, 20)
    zero = clean + rng.uniform(2.0, 3.0, 20)
    sae = clean + rng.uniform(0.0, 1.0, 20)
    stat = R.ce_loss_recovered(clean, sae, zero)
    assert stat.estimate() == pytest.approx(ce_recovered(clean, sae, zero), rel=1e-12)
    with pytest.raises(MiAssertInputError, match="differ in length"):
        R.ce_loss_recovered(clean, sae[:-1], zero)


def test_token_mean_weighs_prompts_by_their_tokens():
    sums, counts = np.array([10.0, 2.0]), np.array([5.0, 1.0])
    assert R.token_mean(sums, counts).estimate() == pytest.approx(12 / 6)  # not mean(2, 2)


def test_one_sided_bound_covers_a_ratio_of_means_and_is_not_vacuous():
    """The lower 95% bound of a ratio of means lies below the true ratio in ~95% of draws, and
    is no lower than the data warrant: a bound of -inf would cover every time, so the test also
    asks that it misses sometimes, sits about 1.645 standard errors below the estimate (not
    several), and detects a true ratio 0.3 above the threshold (power)."""
    true_ratio, misses, detected, draws = 0.5, 0, 0, 200
    threshold = true_ratio - 0.3
    gaps = []
    rng = np.random.default_rng(7)
    for draw in range(draws):
        den = rng.gamma(3.0, size=30)
        num = true_ratio * den + rng.normal(0.0, 0.3, size=30) * den
        res = bootstrap(R.explained_variance(den - num, den), n_resamples=1000, seed=draw,
                        threshold=threshold)
        misses += res.bound > true_ratio  # 1 - (den - num) / den = num / den
        detected += res.passes()
        # the per-draw standard error of the ratio of means (delta method)
        se = 0.3 * np.sqrt((den**2).sum()) / den.sum()
        gaps.append((res.estimate - res.bound) / se)
    assert misses / draws <= 0.09  # nominal 0.05; binomial sd at n=200 is 0.015
    assert misses / draws >= 0.01  # ... and not a vacuous bound that never misses
    assert 1.2 < float(np.mean(gaps)) < 2.4  # about z_0.95 = 1.645 standard errors below
    assert detected / draws >= 0.9  # bound above 0.2 when the truth is 0.5 (power)


def test_dead_fraction_bound_is_exact_and_zero_width():
    fired = np.random.default_rng(8).random((20, 50)) < 0.08
    stat = R.dead_fraction_bound(fired)
    expected = float((~fired.any(0)).mean())
    res = bootstrap(stat, threshold=0.5, alternative="less")
    assert res.estimate == res.low == res.high == res.bound == expected
    assert res.n == 20 and stat.unit == "prompts"
    units = [i % 10 for i in range(20)]  # ten prompts, each twice
    assert R.dead_fraction_bound(fired, units=units).n_units == 10
    with pytest.raises(MiAssertInputError, match="fired"):
        R.dead_fraction(np.ones(5, bool))


def test_sample_dead_fraction_never_undercuts_the_population():
    """Latents dead in the population never fire on a sample, so the sample's dead fraction
    is at least the population's in every draw: a bound that holds with probability 1."""
    rng = np.random.default_rng(9)
    rates = np.where(rng.random(200) < 0.3, 0.0, rng.uniform(0.001, 0.2, 200))
    population_dead = float((rates == 0).mean())
    for _ in range(200):
        fired = rng.random((16, 200)) < rates
        assert R.dead_fraction_bound(fired).estimate() >= population_dead
