"""Tests that kill the surviving mutants of mi_assert/verdict.py and mi_assert/comparison.py
(docs/mutation.md lists each survivor and the test that kills it).

``asserting`` runs when a family module is imported, i.e. before any test, so mutmut cannot
see which test covers it: the tests here build their assertions inside the test body.
"""

from __future__ import annotations

import math

import pytest

from mi_assert import record
from mi_assert.comparison import finite, fmt, holds, pair, relation, side
from mi_assert.stats.evidence import Evidence
from mi_assert.verdict import ClaimFailed, asserting, fail, raise_if_failed


def _evidence(passed: bool, hint: str = "") -> Evidence:
    return Evidence(claim="mean above", metric="value", estimate=0.75, low=0.6, high=0.9,
                    bound=0.65, n=20, threshold=0.5 if passed else 0.7, alpha=0.05,
                    alternative="greater", passed=passed, hint=hint)


def check_value_high(passed: bool = True, *, hint: str = "") -> Evidence:
    """Claim: the value is high.

    Detail line.
        Indented more.
    """
    return _evidence(passed, hint)


def check_nodoc(passed: bool = True) -> Evidence:
    return _evidence(passed)


# --- asserting: name, documentation, behaviour -------------------------------------------


def test_asserting_names_the_assertion_after_the_check():
    assertion = asserting(check_value_high)
    assert assertion.__name__ == "assert_value_high"
    assert assertion.__qualname__ == "assert_value_high"
    assert assertion.__wrapped__ is check_value_high


def test_asserting_replaces_only_the_leading_check_prefix():
    def check_check_twice() -> Evidence:
        return _evidence(True)

    assert asserting(check_check_twice).__name__ == "assert_check_twice"


def test_asserting_documents_the_contract_then_the_check():
    doc = asserting(check_value_high).__doc__
    head = ("Assert the claim :func:`check_value_high` checks: returns its Evidence when the "
            "claim holds, raises ``ClaimFailed`` (an AssertionError carrying the Evidence) "
            "when it does not.\n\n")
    assert doc == head + "Claim: the value is high.\n\nDetail line.\n    Indented more."


def test_asserting_a_check_without_a_docstring_keeps_the_contract_text_only():
    doc = asserting(check_nodoc).__doc__
    assert doc.endswith("when it does not.\n\n") and doc.startswith("Assert the claim")


def test_the_assertion_returns_the_evidence_and_records_it():
    assertion = asserting(check_value_high)
    with record.recording() as rec:
        ev = assertion(True)
    assert ev.passed and [r.evidence for r in rec.peek()] == [ev]


def test_the_assertion_raises_with_the_table_and_the_checks_hint():
    assertion = asserting(check_value_high)
    with record.recording() as rec, pytest.raises(ClaimFailed) as err:
        assertion(False, hint="look at the low values")
    ev = err.value.evidence
    assert isinstance(err.value, AssertionError) and not ev.passed
    assert str(err.value) == "claim does not hold\n" + ev.table() + "\nlook at the low values"
    assert [r.evidence for r in rec.peek()] == [ev]  # recorded before raising


# --- fail / raise_if_failed ----------------------------------------------------------------


def test_fail_without_any_hint_is_the_table_alone():
    ev = _evidence(False)
    with pytest.raises(ClaimFailed) as err:
        fail(ev)
    assert str(err.value) == "claim does not hold\n" + ev.table()
    assert err.value.evidence is ev


def test_an_explicit_hint_replaces_the_evidences_hint():
    ev = _evidence(False, hint="the evidence's hint")
    with pytest.raises(ClaimFailed) as err:
        fail(ev, "the caller's hint")
    assert str(err.value).endswith("\nthe caller's hint")
    assert "the evidence's hint" not in str(err.value)
    with pytest.raises(ClaimFailed) as err:
        raise_if_failed(ev)
    assert str(err.value).endswith("\nthe evidence's hint")


def test_raise_if_failed_passes_the_callers_hint_on():
    ev = _evidence(False, hint="the evidence's hint")
    with record.recording(), pytest.raises(ClaimFailed) as err:
        raise_if_failed(ev, "the caller's hint")
    assert str(err.value) == "claim does not hold\n" + ev.table() + "\nthe caller's hint"


def test_the_verdict_helpers_hide_their_frames_from_pytest_tracebacks():
    # pytest drops a frame whose locals set __tracebackhide__ = True from failure reports
    for raising in (lambda ev: fail(ev), lambda ev: raise_if_failed(ev),
                    lambda ev: asserting(check_value_high)(False)):
        with record.recording(), pytest.raises(ClaimFailed) as err:
            raising(_evidence(False))
        flags = [entry.frame.f_locals["__tracebackhide__"] for entry in err.traceback
                 if "__tracebackhide__" in entry.frame.f_locals]
        assert flags and all(flag is True for flag in flags)


def test_raise_if_failed_returns_a_passing_evidence_itself():
    ev = _evidence(True)
    with record.recording():
        assert raise_if_failed(ev) is ev


# --- comparison: how a bound and a threshold are printed ------------------------------------


@pytest.mark.parametrize("value, expected", [
    (1, True), (0.25, True), (-3.5, True),
    (True, False), (False, False), (math.nan, False), (math.inf, False), (-math.inf, False),
    (None, False), ("0.5", False),
])
def test_finite_means_a_real_finite_number(value, expected):
    assert finite(value) is expected


def test_fmt_prints_digits_and_nan_for_missing_numbers():
    assert fmt(0.81234) == "0.812"
    assert fmt(0.81234, 2) == "0.81"
    assert fmt(2) == "2.000"
    assert fmt(None) == "nan" and fmt(math.nan) == "nan" and fmt(True) == "nan"


@pytest.mark.parametrize("a, b, expected", [
    (0.5, 0.5, ("0.500", "0.500")),
    (0.8125, 0.4, ("0.812", "0.400")),
    (0.50012, 0.5, ("0.5001", "0.5000")),
    (0.500001, 0.5, ("0.500001", "0.500000")),
    # unequal beyond 6 digits: 6 digits, the most it prints
    (0.5000001, 0.5, ("0.500000", "0.500000")),
])
def test_pair_uses_the_fewest_digits_that_tell_unequal_numbers_apart(a, b, expected):
    assert pair(a, b) == expected


@pytest.mark.parametrize("bound, threshold, alternative, expected", [
    (0.6, 0.5, "greater", ">"), (0.5, 0.5, "greater", "<="), (0.4, 0.5, "greater", "<="),
    (0.4, 0.5, "less", "<"), (0.5, 0.5, "less", ">="), (0.6, 0.5, "less", ">="),
    # anything but "less" reads as "greater"
    (0.6, 0.5, "two-sided", ">"),
    (math.nan, 0.5, "greater", "?"), (0.6, None, "greater", "?"), (0.6, math.inf, "less", "?"),
])
def test_holds_is_the_relation_that_is_true(bound, threshold, alternative, expected):
    assert holds(bound, threshold, alternative) == expected


def test_relation_prints_the_numbers_with_the_true_relation_or_the_reason():
    assert relation(0.8125, 0.4, "greater") == "bound 0.812 > threshold 0.400"
    assert relation(0.50012, 0.5, "less") == "bound 0.5001 >= threshold 0.5000"
    assert relation(0.45, 0.5, "greater", "undefined: no gap") == (
        "bound 0.450, threshold 0.500: undefined: no gap")
    assert relation(math.nan, 0.5, "greater") == "bound nan, threshold 0.500"


@pytest.mark.parametrize("alpha, alternative, expected", [
    (0.05, "greater", "one-sided 95% lower bound"),
    (0.05, "less", "one-sided 95% upper bound"),
    (0.01, "greater", "one-sided 99% lower bound"),
    (None, "less", "one-sided upper bound"),
    (math.nan, "greater", "one-sided lower bound"),
])
def test_side_names_the_level_and_the_side_of_the_bound(alpha, alternative, expected):
    assert side(alpha, alternative) == expected
