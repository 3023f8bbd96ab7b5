"""The regression rule of ``--mi-compare`` and the report totals, on real evidence.

The rule (mi_assert/report/compare.py): a "greater" claim REGRESSED when the new interval's
*upper* end lies below ``baseline - tolerance``, improved when its lower end lies above
``baseline + tolerance``; a "less" claim mirrored (REGRESSED when the *lower* end lies above
``baseline + tolerance``, improved when the upper end lies below ``baseline - tolerance``).

**False alarms.** Replaying an unchanged claim with fresh prompt seeds moves its estimate by
sampling error alone. With tolerance 0 the rule then calls a regression when
``new + 1.96 se < baseline``; for two independent estimates with the same standard error that
is ``P(Z > 1.96 / sqrt 2) = 8.3 %`` per claim and direction (the baseline's own error is not
in the rule). The tests measure that rate on replays (synthetic claims: 200 replays per
direction; the planted model: 50 replays, 3 compared rows each) and assert it is below 15 %
(and that a real change, the effect lowered, is flagged).
"""

from __future__ import annotations

import json
from copy import deepcopy

import numpy as np
import pytest
import torch
from scipy.stats import norm

from mi_assert.report import baseline as bl
from mi_assert.report.compare import compare, judge, judge_with_rule
from mi_assert.report.readout import totals
from mi_assert.report.schema import make_record
from mi_assert.stats import ClaimSpec

#: stated ceiling on the false-alarm rate of an unchanged claim replayed with fresh seeds
FALSE_ALARM_CEILING = 0.15
#: the rule's theoretical rate for normal estimates (tolerance 0, equal standard errors)
THEORY = float(norm.sf(norm.ppf(0.975) / np.sqrt(2)))


#: tiny models: one torch thread is ~10x faster than several on a loaded CPU
pytestmark = pytest.mark.usefixtures("one_torch_thread")


# ---------------------------------------------------------------------------------------
# the rule, both directions
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(("base", "low", "high", "alternative", "tol", "status", "rule"), [
    # greater: only the upper end can show a regression, only the lower end an improvement
    (0.8, 0.60, 0.75, "greater", 0.0, "REGRESSED", "high 0.750 < baseline 0.800 - 0"),
    (0.8, 0.60, 0.85, "greater", 0.0, "ok", None),      # low end below: not a regression
    (0.8, 0.70, 0.90, "greater", 0.0, "ok", None),
    (0.8, 0.75, 0.95, "greater", 0.0, "ok", None),      # high end above: not an improvement
    (0.8, 0.85, 0.95, "greater", 0.0, "improved", "low 0.850 > baseline 0.800 + 0"),
    (0.8, 0.60, 0.75, "greater", 0.1, "ok", None),      # within tolerance
    (0.8, 0.60, 0.65, "greater", 0.1, "REGRESSED", "high 0.650 < baseline 0.800 - 0.1"),
    # less: mirrored. The upper end lying above the baseline is NOT a regression
    (0.2, 0.25, 0.30, "less", 0.0, "REGRESSED", "low 0.250 > baseline 0.200 + 0"),
    (0.2, 0.15, 0.30, "less", 0.0, "ok", None),
    (0.2, 0.10, 0.25, "less", 0.0, "ok", None),         # low end below: not an improvement
    (0.2, 0.05, 0.10, "less", 0.0, "improved", "high 0.100 < baseline 0.200 - 0"),
    (0.2, 0.25, 0.30, "less", 0.1, "ok", None),
    (0.2, 0.35, 0.40, "less", 0.1, "REGRESSED", "low 0.350 > baseline 0.200 + 0.1"),
    (0.2, 0.05, 0.08, "less", 0.1, "improved", "high 0.080 < baseline 0.200 - 0.1"),
])
def test_judge_both_directions(base, low, high, alternative, tol, status, rule):
    assert judge(base, low, high, alternative, tol) == status
    got, text = judge_with_rule(base, low, high, alternative, tol)
    assert got == status
    if rule is not None:
        assert text == rule
    else:
        assert text.startswith(f"[{low:.3f}, {high:.3f}] reaches baseline")


# ---------------------------------------------------------------------------------------
# records from real evidence
# ---------------------------------------------------------------------------------------
def _record(ev, nodeid="t.py::test_claim", outcome=None):
    rec = make_record(ev.to_dict(), {"nodeid": nodeid})
    if outcome is not None:
        rec["test_outcome"] = outcome
    return rec


def _statuses(baseline_evs, run_evs):
    base = [bl.slim(_record(ev)) for ev in baseline_evs]
    comp = compare(base, [_record(ev) for ev in run_evs])
    return [row["status"] for row in comp["rows"]]


def _mean_claim(seed: int, mean: float, alternative: str, threshold: float, n: int = 50):
    x = np.random.default_rng(seed).normal(mean, 1.0, n)
    return ClaimSpec("the effect", "effect", {0: x}, threshold=threshold,
                     alternative=alternative, model_info={"spec": "synthetic"}).evaluate()


@pytest.mark.parametrize("alternative", ["greater", "less"])
def test_false_alarm_rate_of_unchanged_synthetic_claims(alternative):
    """200 replays: baseline on prompt seed 2r, replay on 2r + 1, nothing changed."""
    threshold = 0.0 if alternative == "greater" else 1.0
    replays, alarms, improved = 200, 0, 0
    for r in range(replays):
        base = _mean_claim(1000 + 2 * r, 0.5, alternative, threshold)
        new = _mean_claim(1001 + 2 * r, 0.5, alternative, threshold)
        (status,) = _statuses([base], [new])
        alarms += status == "REGRESSED"
        improved += status == "improved"
    rate = alarms / replays
    assert rate <= FALSE_ALARM_CEILING, rate
    assert rate == pytest.approx(THEORY, abs=0.06)  # the rule behaves as its theory says
    assert improved / replays <= FALSE_ALARM_CEILING


@pytest.mark.parametrize("alternative", ["greater", "less"])
def test_real_change_is_flagged_both_ways(alternative):
    """The effect moved by 0.8 (about 5.7 standard errors of the n=50 mean): flagged every time,
    as a regression when it got worse for the claim and an improvement when it got better."""
    threshold = 0.0 if alternative == "greater" else 1.0
    worse = -0.8 if alternative == "greater" else 0.8
    counts = {"worse": [], "better": []}
    for r in range(20):
        base = _mean_claim(5000 + 3 * r, 0.5, alternative, threshold)
        counts["worse"] += _statuses([base], [_mean_claim(5001 + 3 * r, 0.5 + worse,
                                                          alternative, threshold)])
        counts["better"] += _statuses([base], [_mean_claim(5002 + 3 * r, 0.5 - worse,
                                                           alternative, threshold)])
    assert counts["worse"].count("REGRESSED") >= 19
    assert counts["better"].count("improved") >= 19
    assert "REGRESSED" not in counts["better"] and "improved" not in counts["worse"]


# ---------------------------------------------------------------------------------------
# replays of claims on the planted model
# ---------------------------------------------------------------------------------------
def _dla_claims(handle, gt, seed: int):
    """DLA of the induction head (min_value, "greater") and of the self head (|share| < 0.1: a
    "less" and a "greater" member) on 24 fresh repeated prompts drawn with ``seed``."""
    from mi_assert.causal.attribution import check_direct_logit_attribution
    from tests.attribution.conftest import distinct_repeats

    toks = distinct_repeats(24, 16, handle.d_vocab, seed=seed)
    correct = toks[:, -1]
    wrong = correct % (handle.d_vocab - 1) + 1
    kw = {"position": -2, "n_resamples": 1000}
    writes = check_direct_logit_attribution(handle, toks, gt.heads("induction"), correct, wrong,
                                            min_value=5.0, **kw)
    quiet = check_direct_logit_attribution(handle, toks, gt.heads("self"), correct, wrong,
                                           max_abs_share=0.1, **kw)
    return [writes, quiet]


def test_false_alarm_rate_of_unchanged_claims_on_the_planted_model(planted):
    handle, gt = planted
    replays, rows, alarms = 50, 0, 0
    by_direction = {"greater": 0, "less": 0}
    for r in range(replays):
        base = _dla_claims(handle, gt, 100 + 2 * r)
        new = _dla_claims(handle, gt, 101 + 2 * r)
        comp = compare([bl.slim(_record(ev, f"t.py::test_{i}")) for i, ev in enumerate(base)],
                       [_record(ev, f"t.py::test_{i}") for i, ev in enumerate(new)])
        assert len(comp["rows"]) == 3  # min_value; share < 0.1 and share > -0.1 (members)
        for row in comp["rows"]:
            rows += 1
            if row["status"] == "REGRESSED":
                alarms += 1
                by_direction[row["alternative"]] += 1
    assert alarms / rows <= FALSE_ALARM_CEILING, (alarms, rows, by_direction)


def test_lowered_effect_on_the_planted_model_is_flagged(planted):
    from mi_assert import as_handle

    handle, gt = planted
    model = deepcopy(handle.model)
    layer, head = gt.heads("induction")[0]
    with torch.no_grad():
        model.blocks[layer].attn.W_O[head] *= 0.8  # the induction head writes 20% less
    weaker = as_handle(model)
    flagged = 0
    for r in range(5):
        base = _dla_claims(handle, gt, 300 + 2 * r)[0]
        new = _dla_claims(weaker, gt, 301 + 2 * r)[0]
        assert new.passed  # still clears its threshold: only the comparison sees the drop
        (status,) = _statuses([base], [new])
        flagged += status == "REGRESSED"
    assert flagged == 5


# ---------------------------------------------------------------------------------------
# report totals on a run with mixed outcomes
# ---------------------------------------------------------------------------------------
def test_totals_of_mixed_evidence():
    good = _mean_claim(1, 0.5, "greater", 0.0)
    bad = _mean_claim(2, 0.0, "greater", 0.5)
    assert good.passed and not bad.passed
    recs = [_record(good, "t.py::a", "passed"), _record(bad, "t.py::b", "failed"),
            _record(bad, "t.py::c", "passed"), _record(bad, "t.py::d", "xfailed"),
            _record(good, "t.py::e", "passed"), _record(bad, "t.py::f", "failed")]
    t = totals(recs)
    assert (t["claims"], t["passed"], t["failed"]) == (6, 2, 4)
    assert (t["expected_failures"], t["unexpected_failures"]) == (2, 2)
    assert t["verdict"] == "4 of 6 claim(s) FAILED (2 expected by their tests, 2 unexpected)"
    assert totals(recs[:1])["verdict"] == "all 1 claim(s) passed"
    only_expected = totals([recs[0], recs[2], recs[3]])
    assert only_expected["verdict"] == "2 of 3 claim(s) FAILED (all expected by their tests)"


MIXED = '''
import numpy as np
import pytest

from mi_assert import ClaimFailed
from mi_assert.stats import ClaimSpec
from mi_assert.verdict import raise_if_failed


def claim(name, mean, threshold):
    x = np.random.default_rng(0).normal(mean, 1.0, 50)
    return raise_if_failed(ClaimSpec(name, "effect", {0: x}, threshold=threshold).evaluate())


def test_holds():
    claim("holds", 1.0, 0.0)


def test_fails():
    claim("fails", 0.0, 1.0)


def test_expected_failure():
    with pytest.raises(ClaimFailed):
        claim("expected to fail", 0.0, 1.0)


@pytest.mark.xfail(raises=ClaimFailed, strict=True)
def test_xfail():
    claim("xfail", 0.0, 1.0)


def test_two_claims_one_fails():
    claim("first holds", 1.0, 0.0)
    claim("second fails", 0.0, 1.0)
'''


def test_report_totals_on_a_run_with_mixed_outcomes(pytester: pytest.Pytester):
    pytester.makepyfile(test_mixed=MIXED)
    result = pytester.runpytest("--mi-report", "rep", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, failed=2, xfailed=1)
    doc = json.loads((pytester.path / "rep" / "report.json").read_text())
    t = doc["totals"]
    assert (t["claims"], t["passed"], t["failed"]) == (6, 2, 4), t
    assert (t["expected_failures"], t["unexpected_failures"]) == (2, 2), t
    assert t["verdict"] == "4 of 6 claim(s) FAILED (2 expected by their tests, 2 unexpected)"
    result.stdout.fnmatch_lines(["*4 of 6 claim(s) FAILED (2 expected by their tests, 2 unexpected)*"])
    page = (pytester.path / "rep" / "report.html").read_text()
    assert "2 passed" in page and "2 failed unexpectedly" in page and "all 6" not in page
    assert "2 expected failures" in page and t["verdict"] in page
    last = [ln for ln in result.outlines if ln.startswith("mi-assert: ")][-1]
    assert last.startswith("mi-assert: 6 claim(s): 2 passed, 2 failed unexpectedly, 2 expected failure(s); "
                           "0 tests skipped for missing weights"), last
