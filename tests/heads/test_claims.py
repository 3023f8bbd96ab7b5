"""The shared claim engine (mi_assert.stats.claims): pure numbers in, Evidence out."""

from __future__ import annotations

import numpy as np
import pytest

from mi_assert.errors import MiAssertInputError
from mi_assert.stats.claims import ClaimSpec, RowKey, as_row_key, evaluate_claim, evaluate_family


def _normal(mean: float, n: int = 40, sd: float = 0.05, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(mean, sd, n)


def test_clear_claim_passes_and_reports_every_seed():
    ev = evaluate_claim("x is big", "score", {s: _normal(0.9, seed=s) for s in (0, 1, 2)},
                        threshold=0.4)
    assert ev.passed and ev.verdict == "PASS"
    assert [r.seed for r in ev.per_seed] == [0, 1, 2]
    assert ev.bound == min(r.bound for r in ev.per_seed) > 0.4
    assert ev.low <= min(r.low for r in ev.per_seed) and ev.high >= max(r.high for r in ev.per_seed)
    assert ev.n == 120
    assert ev.estimate == pytest.approx(np.mean([r.estimate for r in ev.per_seed]))
    assert ev.details["seeds_passed"] == "3 of 3"
    assert "samples" in ev.figures and ev.figures["samples"]["kind"] == "hist"


def test_false_claim_fails_in_both_directions():
    below = evaluate_claim("x is big", "score", {0: _normal(0.2)}, threshold=0.4)
    assert not below.passed
    above = evaluate_claim("x is small", "score", {0: _normal(0.9)}, threshold=0.4,
                           alternative="less")
    assert not above.passed
    small = evaluate_claim("x is small", "score", {0: _normal(0.1)}, threshold=0.4,
                           alternative="less")
    assert small.passed and small.bound < 0.4


def test_estimate_above_threshold_but_bound_below_fails():
    # mean 0.42 with wide spread: the point estimate clears 0.4, the 95% lower bound does not
    z = _normal(0.0, n=20, sd=1.0, seed=3)
    x = 0.42 + 0.3 * (z - z.mean()) / z.std()
    ev = evaluate_claim("x is big", "score", {0: x}, threshold=0.4)
    assert ev.estimate > 0.4 and ev.bound <= 0.4 and not ev.passed


def test_one_failing_seed_fails_the_claim_unless_quorum():
    rows = {0: _normal(0.9), 1: _normal(0.9, seed=1), 2: _normal(0.1, seed=2)}
    assert not evaluate_claim("c", "m", rows, threshold=0.4).passed
    ev = evaluate_claim("c", "m", rows, threshold=0.4, quorum=2)
    assert ev.passed and ev.details["seeds_passed"] == "2 of 3"
    assert ev.bound > 0.4  # the 2nd best seed's bound
    assert evaluate_claim("c", "m", rows, threshold=0.4, quorum=0.6).passed
    assert not evaluate_claim("c", "m", rows, threshold=0.4, quorum=1.0).passed
    with pytest.raises(MiAssertInputError, match="quorum"):
        evaluate_claim("c", "m", rows, threshold=0.4, quorum=4)


def test_conditions_within_a_seed_must_all_hold_and_quorum_counts_seeds():
    rows = {(0, None, "L=8"): _normal(0.9), (0, None, "L=16"): _normal(0.1),
            (1, None, "L=8"): _normal(0.9, seed=1), (1, None, "L=16"): _normal(0.9, seed=2)}
    ev = evaluate_claim("c", "m", rows, threshold=0.4)
    assert not ev.passed and ev.details["seeds_passed"] == "1 of 2"
    assert evaluate_claim("c", "m", rows, threshold=0.4, quorum=1).passed
    assert {r.label for r in ev.per_seed} == {"L=8", "L=16"}


def test_degenerate_samples_give_zero_width_interval():
    ev = evaluate_claim("c", "m", {0: np.ones(10)}, threshold=0.4)
    assert ev.passed and ev.low == ev.high == ev.bound == 1.0
    ev = evaluate_claim("c", "m", {0: np.zeros(10)}, threshold=0.4)
    assert not ev.passed


def test_bad_samples_raise_clear_errors():
    with pytest.raises(MiAssertInputError, match="at least 2"):
        evaluate_claim("c", "m", {0: [0.9]}, threshold=0.4)
    with pytest.raises(MiAssertInputError, match="NaN"):
        evaluate_claim("c", "m", {0: [0.9, float("nan"), 0.8]}, threshold=0.4)
    with pytest.raises(MiAssertInputError, match="row key"):
        evaluate_claim("c", "m", {"zero": [0.9, 0.8]}, threshold=0.4)
    with pytest.raises(MiAssertInputError, match="no sample rows"):
        evaluate_claim("c", "m", {}, threshold=0.4)
    with pytest.raises(MiAssertInputError, match="seeds"):
        evaluate_claim("c", "m", lambda s: [0.9, 0.8], threshold=0.4)
    with pytest.raises(MiAssertInputError, match="alternative"):
        evaluate_claim("c", "m", {0: [0.9, 0.8]}, threshold=0.4, alternative="two-sided")


def test_callable_samples_and_row_keys():
    ev = evaluate_claim("c", "m", lambda s: {"a": _normal(0.9, seed=s), "b": _normal(0.8, seed=s)},
                        threshold=0.4, seeds=[3, 4])
    assert [(r.seed, r.label) for r in ev.per_seed] == [(3, "a"), (3, "b"), (4, "a"), (4, "b")]
    assert as_row_key((1, 2)) == RowKey(1, 2, "")
    ev = evaluate_claim("c", "m", {(0, 5): _normal(0.9), (0, 6): _normal(0.9, seed=1)}, threshold=0.4)
    assert [r.model_seed for r in ev.per_seed] == [5, 6]


def test_deterministic_and_row_results_independent_of_other_rows():
    rows = {s: _normal(0.5, sd=0.3, seed=s) for s in range(3)}
    a = evaluate_claim("c", "m", rows, threshold=0.4)
    b = evaluate_claim("c", "m", dict(rows), threshold=0.4)
    assert a.to_dict() == b.to_dict()
    only_first = evaluate_claim("c", "m", {0: rows[0]}, threshold=0.4)
    assert only_first.per_seed[0] == a.per_seed[0]


def test_holm_family_controls_and_lists_members():
    strong = ClaimSpec("strong", "m", {0: _normal(0.9)}, threshold=0.4)
    weak = ClaimSpec("weak", "m", {0: _normal(0.47, n=30, sd=0.15, seed=4)}, threshold=0.4)
    alone = weak.evaluate(0.05)
    fam = evaluate_family([strong, weak, ClaimSpec("strong2", "m", {0: _normal(0.9, seed=9)}, threshold=0.4)])
    assert [m.claim for m in fam.family] == ["strong", "weak", "strong2"]
    levels = sorted(m.settings["holm_alpha"] for m in fam.family)
    assert levels == pytest.approx([0.05 / 3, 0.05 / 2, 0.05])
    weak_member = fam.family[1]
    # the weak member is tested at a stricter level, so its bound is lower than alone
    assert weak_member.bound <= alone.bound
    assert fam.passed == all(m.passed for m in fam.family)
    assert fam.details["members_passed"].endswith("of 3")


def test_holm_step_down_fails_later_members_and_family_bound_is_consistent():
    good = ClaimSpec("good", "m", {0: _normal(0.9)}, threshold=0.4)
    bad = ClaimSpec("bad", "m", {0: _normal(0.1)}, threshold=0.4)
    fam = evaluate_family([bad, good])
    assert not fam.passed
    assert fam.family[1].passed and not fam.family[0].passed
    assert fam.bound <= fam.threshold  # verdict and bound agree
    ok = evaluate_family([good, ClaimSpec("good2", "m", {0: _normal(0.8, seed=2)}, threshold=0.4)])
    assert ok.passed and ok.bound > ok.threshold
    single = evaluate_family([good])
    assert single.passed and single.family[0].settings["holm_alpha"] == 0.05


def test_family_accepts_callables():
    fam = evaluate_family([lambda a: evaluate_claim("x", "m", {0: _normal(0.9)}, threshold=0.4, alpha=a)] * 2)
    assert fam.passed and len(fam.family) == 2
    with pytest.raises(MiAssertInputError):
        evaluate_family([])
