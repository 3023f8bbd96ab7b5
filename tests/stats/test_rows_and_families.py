"""The claim engine as the head family uses it: rows per seed and condition, deciding-row
headline, per-row n, Holm families of heads (pure numbers in, Evidence out)."""

from __future__ import annotations

import numpy as np
import pytest

from mi_assert.errors import MiAssertInputError
from mi_assert.stats.claims import ClaimSpec, RowKey, as_row_key, evaluate_claim
from mi_assert.stats.composite import all_of, holm_family
from mi_assert.stats.statistic import Mean
from tests.evidence_contract import check_evidence as check_invariants


def _normal(mean: float, n: int = 40, sd: float = 0.05, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(mean, sd, n)


def _claim(samples, threshold=0.4, alpha=0.05, claim="c", metric="m", **kw):
    return check_invariants(evaluate_claim(ClaimSpec(claim, metric, samples, threshold, **kw), alpha))


def test_clear_claim_passes_and_reports_every_seed():
    ev = _claim({s: _normal(0.9, seed=s) for s in (0, 1, 2)}, claim="x is big", metric="score")
    assert ev.passed and ev.verdict == "PASS"
    assert [r.seed for r in ev.per_seed] == [0, 1, 2]
    # the headline is the deciding row (the worst one), in that row's own numbers
    worst = min(ev.per_seed, key=lambda r: r.bound)
    assert ev.bound == worst.bound > 0.4
    assert (ev.estimate, ev.low, ev.high, ev.n) == (worst.estimate, worst.low, worst.high, worst.n)
    assert ev.deciding == worst.name
    assert ev.n == 40 and all(r.n == 40 for r in ev.per_seed)  # per row, not a total
    assert ev.envelope == (min(r.low for r in ev.per_seed), max(r.high for r in ev.per_seed))
    assert ev.details["seeds_passed"] == "3 of 3"
    assert "samples" in ev.figures and ev.figures["samples"]["kind"] == "hist"


def test_false_claim_fails_in_both_directions():
    below = _claim({0: _normal(0.2)})
    assert not below.passed
    above = _claim({0: _normal(0.9)}, alternative="less")
    assert not above.passed
    small = _claim({0: _normal(0.1)}, alternative="less")
    assert small.passed and small.bound < 0.4


def test_estimate_above_threshold_but_bound_below_fails():
    # mean 0.42 with wide spread: the point estimate clears 0.4, the 95% lower bound does not
    z = _normal(0.0, n=20, sd=1.0, seed=3)
    x = 0.42 + 0.3 * (z - z.mean()) / z.std()
    ev = _claim({0: x})
    assert ev.estimate > 0.4 and ev.bound <= 0.4 and not ev.passed


def test_one_failing_seed_fails_the_claim_unless_quorum():
    rows = {0: _normal(0.9), 1: _normal(0.9, seed=1), 2: _normal(0.1, seed=2)}
    failed = _claim(rows)
    assert not failed.passed and failed.deciding == "seed 2"
    ev = _claim(rows, quorum=2)
    assert ev.passed and ev.details["seeds_passed"] == "2 of 3"
    # the 2nd best seed decides, and its bound is the headline
    second = sorted((r for r in ev.per_seed if r.passed), key=lambda r: r.bound)[0]
    assert ev.bound == second.bound > 0.4 and ev.deciding == second.name
    assert _claim(rows, quorum=0.6).passed
    assert not _claim(rows, quorum=1.0).passed
    with pytest.raises(MiAssertInputError, match="quorum"):
        _claim(rows, quorum=4)


def test_conditions_within_a_seed_must_all_hold_and_quorum_counts_seeds():
    rows = {(0, None, "L=8"): _normal(0.9), (0, None, "L=16"): _normal(0.1),
            (1, None, "L=8"): _normal(0.9, seed=1), (1, None, "L=16"): _normal(0.9, seed=2)}
    ev = _claim(rows)
    assert not ev.passed and ev.details["seeds_passed"] == "1 of 2"
    assert ev.deciding == "seed 0, L=16"
    one = _claim(rows, quorum=1)
    assert one.passed and one.deciding.startswith("seed 1")
    assert {r.label for r in ev.per_seed} == {"L=8", "L=16"}


def test_zero_variance_samples_are_bounded_by_the_range_or_decided_at_their_value():
    ev = _claim({0: np.ones(10)}, value_range=(0.0, 1.0))
    # ten 1.0s on a [0, 1] score: a share 1 - 0.05^(1/10) = 26% of zeros is not excluded
    assert ev.bound == pytest.approx(0.05 ** 0.1) and ev.high == ev.estimate == 1.0
    assert ev.passed == (0.05 ** 0.1 > ev.threshold)
    assert not _claim({0: np.zeros(10)}, value_range=(0.0, 1.0)).passed
    # no range to bound by: a deterministic value on 10 distinct prompts is decided at the value
    exact = _claim({0: np.ones(10)})
    assert exact.passed and exact.low == exact.high == exact.bound == 1.0


def test_too_few_distinct_units_are_refused():
    with pytest.raises(MiAssertInputError, match="rests on 1 distinct prompts"):
        _claim({0: [0.9]})
    ids = [("p", i % 3) for i in range(30)]
    with pytest.raises(MiAssertInputError, match=r"3 distinct prompts \(30 samples, duplicates merged\)"):
        _claim({0: Mean(_normal(0.9, n=30), units=ids)})
    ev = _claim({0: Mean(_normal(0.9, n=30), units=ids)}, min_units=3)
    assert ev.n == 3


def test_bad_samples_raise_clear_errors():
    with pytest.raises(MiAssertInputError, match="NaN"):
        _claim({0: [0.9, float("nan"), 0.8]})
    with pytest.raises(MiAssertInputError, match="row key"):
        _claim({"zero": [0.9, 0.8]})
    with pytest.raises(MiAssertInputError, match="no sample rows"):
        _claim({})
    with pytest.raises(MiAssertInputError, match="seeds"):
        _claim(lambda s: _normal(0.9))
    with pytest.raises(MiAssertInputError, match="alternative"):
        _claim({0: _normal(0.9)}, alternative="two-sided")
    with pytest.raises(MiAssertInputError, match="outside the range"):
        _claim({0: _normal(0.9)}, threshold=1.5, value_range=(0.0, 1.0))


def test_callable_samples_and_row_keys():
    ev = _claim(lambda s: {"a": _normal(0.9, seed=s), "b": _normal(0.8, seed=s)}, seeds=[3, 4])
    assert [(r.seed, r.label) for r in ev.per_seed] == [(3, "a"), (3, "b"), (4, "a"), (4, "b")]
    assert as_row_key((1, 2)) == RowKey(1, 2, "")
    ev = _claim({(0, 5): _normal(0.9), (0, 6): _normal(0.9, seed=1)})
    assert [r.model_seed for r in ev.per_seed] == [5, 6]


def test_deterministic_and_row_results_independent_of_other_rows():
    rows = {s: _normal(0.5, sd=0.3, seed=s) for s in range(3)}
    a = _claim(rows)
    b = _claim(dict(rows))
    assert a.to_dict() == b.to_dict()
    only_first = _claim({0: rows[0]})
    assert only_first.per_seed[0] == a.per_seed[0]


def test_holm_family_controls_and_lists_members():
    strong = ClaimSpec("strong", "m", {0: _normal(0.9)}, threshold=0.4)
    weak = ClaimSpec("weak", "m", {0: _normal(0.47, n=30, sd=0.15, seed=4)}, threshold=0.4)
    alone = weak.evaluate(0.05)
    fam = check_invariants(holm_family(
        [strong, weak, ClaimSpec("strong2", "m", {0: _normal(0.9, seed=9)}, threshold=0.4)],
        claim="each is big"))
    assert fam.composite.startswith("Holm")
    assert [m.claim for m in fam.family] == ["strong", "weak", "strong2"]
    levels = sorted(m.settings["holm_alpha"] for m in fam.family)
    assert levels == pytest.approx([0.05 / 3, 0.05 / 2, 0.05])
    weak_member = fam.family[1]
    # the weak member is tested at a stricter level, so its bound is lower than alone
    assert weak_member.bound <= alone.bound
    assert fam.passed == all(m.passed for m in fam.family)
    assert fam.details["members_passed"].endswith("of 3")
    decider = next(m for m in fam.family if m.claim == fam.deciding)
    assert (fam.estimate, fam.low, fam.high, fam.bound, fam.n, fam.threshold) == (
        decider.estimate, decider.low, decider.high, decider.bound, decider.n, decider.threshold)


def test_holm_step_down_fails_later_members_and_family_bound_is_consistent():
    good = ClaimSpec("good", "m", {0: _normal(0.9)}, threshold=0.4)
    bad = ClaimSpec("bad", "m", {0: _normal(0.1)}, threshold=0.4)
    fam = check_invariants(holm_family([bad, good], claim="both"))
    assert not fam.passed and fam.deciding == "bad"
    assert fam.family[1].passed and not fam.family[0].passed
    assert fam.bound <= fam.threshold  # verdict and bound agree
    ok = check_invariants(holm_family(
        [good, ClaimSpec("good2", "m", {0: _normal(0.8, seed=2)}, threshold=0.4)], claim="both"))
    assert ok.passed and ok.bound > ok.threshold
    single = check_invariants(holm_family([good], claim="good alone"))
    assert single.passed and single.claim == "good alone" and single.bound == good.evaluate().bound


def test_all_of_takes_specs_and_evidence():
    first = ClaimSpec("a", "m", {0: _normal(0.9)}, threshold=0.4)
    second = ClaimSpec("b", "m", {0: _normal(0.2, seed=1)}, threshold=0.4).evaluate()
    both = check_invariants(all_of([first, second], claim="a and b"))
    assert not both.passed and both.deciding == "b" and both.composite.startswith("all members")
    with pytest.raises(MiAssertInputError):
        all_of([], claim="nothing")
    with pytest.raises(MiAssertInputError):
        holm_family([], claim="nothing")
