"""evaluate_claim: rows, seeds, quorum, deciding row, minimum evidence, threshold range."""

from __future__ import annotations

import numpy as np
import pytest

from mi_assert.errors import MiAssertInputError
from mi_assert.stats import ClaimSpec, Mean, RatioOfMeans, undefined_claim
from mi_assert.stats.bootstrap import bootstrap_mean, clears
from mi_assert.stats.evidence import Evidence, EvidenceInvariantError


def _rows(*means, n=30, seed=0):
    rng = np.random.default_rng(seed)
    return {i: rng.normal(m, 0.1, n) for i, m in enumerate(means)}


def _check_invariants(ev: Evidence) -> None:
    for e in (ev, *ev.family):
        if not e.reason:
            assert e.passed == clears(e.bound, e.threshold, e.alternative)
            assert e.low <= e.estimate <= e.high
        for r in e.per_seed:
            assert r.passed == clears(r.bound, e.threshold, e.alternative)
            assert r.low <= r.estimate <= r.high


def test_headline_is_the_deciding_row_and_n_is_its_units():
    ev = ClaimSpec("c", "score", _rows(0.9, 0.5, 0.8), threshold=0.6).evaluate()
    worst = min(ev.per_seed, key=lambda r: r.bound)
    assert not ev.passed and ev.deciding == "seed 1"
    assert (ev.estimate, ev.low, ev.high, ev.bound, ev.n) == (
        worst.estimate, worst.low, worst.high, worst.bound, 30)
    assert ev.envelope == (min(r.low for r in ev.per_seed), max(r.high for r in ev.per_seed))
    assert "<= threshold 0.600: FAIL" in ev.summary_line()
    _check_invariants(ev)


def test_rows_equal_the_plain_bootstrap_of_each_row():
    rows = _rows(0.9, 0.8)
    ev = ClaimSpec("c", "score", rows, threshold=0.5).evaluate()
    for r in ev.per_seed:
        assert r.estimate == pytest.approx(rows[r.seed].mean(), abs=1e-15)
    assert ev.passed and "> threshold 0.500: PASS" in ev.summary_line()


def test_worst_seed_decides_and_quorum_relaxes_it():
    rows = _rows(0.9, 0.2, 0.85)
    assert not ClaimSpec("c", "s", rows, threshold=0.5).evaluate().passed
    ev = ClaimSpec("c", "s", rows, threshold=0.5, quorum=2).evaluate()
    assert ev.passed and ev.deciding == "seed 2"  # the 2nd best seed decides
    assert not ClaimSpec("c", "s", rows, threshold=0.5, quorum=3).evaluate().passed
    _check_invariants(ev)


def test_every_condition_of_a_seed_must_pass():
    rng = np.random.default_rng(0)
    rows = {(0, None, "len=8"): rng.normal(0.9, 0.1, 20), (0, None, "len=16"): rng.normal(0.1, 0.1, 20)}
    ev = ClaimSpec("c", "s", rows, threshold=0.5).evaluate()
    assert not ev.passed and ev.deciding == "seed 0, len=16"


def test_less_claims_use_the_upper_bound():
    rows = _rows(0.2, 0.3)
    ev = ClaimSpec("c", "s", rows, threshold=0.5, alternative="less").evaluate()
    assert ev.passed and ev.bound > ev.estimate and "upper bound" in ev.summary_line()
    assert not ClaimSpec("c", "s", rows, threshold=0.25, alternative="less").evaluate().passed


def test_too_few_distinct_units_are_refused_not_passed():
    copies = np.full(16, 1.001)
    with pytest.raises(MiAssertInputError, match="1 distinct prompts"):
        ClaimSpec("c", "s", {0: Mean(copies, units=["same prompt"] * 16)}, threshold=0.5).evaluate()
    with pytest.raises(MiAssertInputError, match="rests on 4 distinct"):
        ClaimSpec("c", "s", {0: np.arange(4.0)}, threshold=0.5).evaluate()
    ClaimSpec("c", "s", {0: np.arange(4.0)}, threshold=0.5, min_units=4).evaluate()


def test_fixed_prompts_with_several_seeds_do_not_count_as_more_samples():
    x = np.random.default_rng(0).normal(1, 0.2, 16)
    ev = ClaimSpec("c", "s", {0: x, 1: x, 2: x}, threshold=0.5).evaluate()
    assert ev.n == 16


@pytest.mark.parametrize("threshold, alternative", [(-1.0, "greater"), (1.5, "greater"),
                                                    (1.0, "greater"), (0.0, "less")])
def test_threshold_outside_the_metric_range_is_refused(threshold, alternative):
    with pytest.raises(MiAssertInputError, match="outside the range"):
        ClaimSpec("c", "score", _rows(0.5), threshold=threshold, alternative=alternative,
                  value_range=(0.0, 1.0)).evaluate()


def test_ratio_rows_and_deterministic_evidence():
    rng = np.random.default_rng(2)
    rows = {0: RatioOfMeans(rng.normal(0.9, 0.1, 20), rng.normal(1, 0.1, 20))}
    a = ClaimSpec("c", "s", rows, threshold=0.5).evaluate()
    b = ClaimSpec("c", "s", rows, threshold=0.5).evaluate()
    assert a.to_dict() == b.to_dict() and a.passed


def test_callable_samples_need_seeds():
    def fn(seed):
        return np.random.default_rng(seed).normal(1, 0.1, 10)

    ev = ClaimSpec("c", "s", fn, threshold=0.5, seeds=[0, 1]).evaluate()
    assert [r.seed for r in ev.per_seed] == [0, 1]
    with pytest.raises(MiAssertInputError, match="pass seeds"):
        ClaimSpec("c", "s", fn, threshold=0.5).evaluate()


def test_undefined_claim_fails_with_its_reason_as_headline():
    ev = undefined_claim("share", "share of logit diff", "mean logit difference -0.2 <= 0",
                         threshold=0.9)
    assert not ev.passed and "undefined: mean logit difference" in ev.summary_line()
    assert "> threshold" not in ev.summary_line()


def test_evidence_refuses_numbers_that_contradict_the_verdict():
    with pytest.raises(EvidenceInvariantError):
        Evidence(claim="c", metric="m", estimate=0.5, low=0.4, high=0.6, bound=0.45, n=10,
                 threshold=0.9, alpha=0.05, alternative="greater", passed=True)
    with pytest.raises(EvidenceInvariantError):
        Evidence(claim="c", metric="m", estimate=0.432, low=0.467, high=0.525, bound=0.5, n=10,
                 threshold=0.6, alpha=0.05, alternative="less", passed=True)


def test_evidence_is_immutable():
    ev = ClaimSpec("c", "s", _rows(0.9), threshold=0.5).evaluate()
    with pytest.raises(AttributeError):
        ev.passed = False  # type: ignore[misc]
    with pytest.raises(TypeError):
        ev.details["x"] = 1  # type: ignore[index]
    more = ev.with_context(details={"x": 1})
    assert more.details["x"] == 1 and "x" not in ev.details and more.bound == ev.bound


def test_bootstrap_mean_is_the_row_engine():
    x = np.random.default_rng(9).normal(1, 1, 30)
    ev = ClaimSpec("c", "s", {0: x}, threshold=0.0, bootstrap_seed=0).evaluate()
    row = ev.per_seed[0]
    assert row.n == 30 and row.low <= row.estimate <= row.high
    assert bootstrap_mean(x).estimate == pytest.approx(row.estimate)


def test_bound_and_threshold_print_unequal_when_they_differ():
    x = np.random.default_rng(0).normal(0.45, 0.02, 40)
    row = ClaimSpec("c", "s", {0: x}, threshold=0.5).evaluate().per_seed[0]
    ev = ClaimSpec("c", "s", {0: x}, threshold=round(row.bound + 2e-5, 6)).evaluate()
    assert not ev.passed
    text = ev.summary_line()
    printed = text.split("bound ")[1].split(" <= threshold ")
    assert printed[0] != printed[1].split(":")[0], text
