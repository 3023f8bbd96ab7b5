"""Composite claims: all members (intersection-union) and Holm; the deciding member."""

from __future__ import annotations

import numpy as np
import pytest

from mi_assert.errors import MiAssertInputError
from mi_assert.stats import ClaimSpec, all_of, holm_family, undefined_claim
from mi_assert.stats.bootstrap import clears


def _spec(name, mean, threshold, alternative="greater", n=30, sd=0.1, seed=0):
    x = np.random.default_rng(seed).normal(mean, sd, n)
    return ClaimSpec(name, f"{name} metric", {0: x}, threshold=threshold, alternative=alternative)


def _headline(ev):
    return (ev.metric, ev.estimate, ev.low, ev.high, ev.bound, ev.threshold, ev.alternative, ev.n)


def test_all_of_headline_is_the_failing_member_in_its_own_units():
    ev_spec = _spec("EV", 0.85, 0.7)
    l0_low = _spec("L0 > 7.5", 8.0, 7.5, sd=0.2)
    l0_high = _spec("L0 < 8.5", 8.6, 8.5, alternative="less", sd=0.2)
    ev = all_of([ev_spec, l0_low, l0_high], claim="SAE reconstructs")
    decider = next(m for m in ev.family if m.claim == "L0 < 8.5")
    assert not ev.passed and ev.deciding == "L0 < 8.5"
    assert _headline(ev) == _headline(decider)
    assert "deciding member 'L0 < 8.5'" in ev.summary_line()
    assert ">= threshold 8.500: FAIL" in ev.summary_line()


def test_all_of_passing_headline_is_the_smallest_standardised_margin():
    a = _spec("far", 0.9, 0.2)
    b = _spec("near", 0.55, 0.5, sd=0.05)
    ev = all_of([a, b], claim="both")
    assert ev.passed and ev.deciding == "near"
    assert clears(ev.bound, ev.threshold, ev.alternative)


def test_all_of_tests_each_member_at_alpha():
    a = _spec("a", 0.6, 0.5)
    ev = all_of([a, _spec("b", 0.9, 0.5)], claim="x", alpha=0.05)
    member = next(m for m in ev.family if m.claim == "a")
    assert member.alpha == 0.05 and member.bound == a.evaluate(0.05).bound


def test_single_member_is_the_claim_itself():
    spec = _spec("only", 0.9, 0.5)
    ev = all_of([spec], claim="renamed", details={"k": 1})
    assert ev.claim == "renamed" and ev.bound == spec.evaluate().bound and ev.details["k"] == 1
    assert not ev.family


def test_undefined_member_decides_and_its_reason_shows():
    bad = undefined_claim("share", "share", "mean logit difference <= 0", threshold=0.9)
    ev = all_of([_spec("ok", 0.9, 0.5), bad], claim="DLA")
    assert not ev.passed and ev.deciding == "share" and "undefined" in ev.summary_line()


def test_holm_reevaluates_members_at_their_levels_and_steps_down():
    strong, weak = _spec("strong", 0.9, 0.5), _spec("weak", 0.52, 0.5, sd=0.2, seed=3)
    ev = holm_family([strong, weak], claim="each", alpha=0.05)
    by = {m.claim: m for m in ev.family}
    assert by["strong"].settings["holm_alpha"] == pytest.approx(0.025)
    assert by["strong"].alpha == pytest.approx(0.025)
    assert by["strong"].bound == strong.evaluate(0.025).bound
    assert by["weak"].settings["holm_alpha"] == pytest.approx(0.05)
    assert not ev.passed and ev.deciding == "weak"
    assert ev.composite.startswith("Holm")


def test_holm_not_tested_members_fail_with_a_reason_not_a_cleared_bound():
    fails = _spec("fails", 0.3, 0.5)
    later = _spec("later", 0.58, 0.5, sd=0.15, seed=1)
    ev = holm_family([fails, later], claim="each")
    by = {m.claim: m for m in ev.family}
    assert not by["fails"].passed
    if by["later"].reason:
        assert "not tested" in by["later"].reason and not by["later"].passed
        assert "> threshold" not in by["later"].summary_line()
    assert ev.deciding == "fails"


def test_empty_composites_are_refused():
    with pytest.raises(MiAssertInputError):
        all_of([], claim="x")
    with pytest.raises(MiAssertInputError):
        holm_family([], claim="x")
