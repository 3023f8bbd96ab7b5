"""What the baseline diff and the report read-outs print, pinned on fixed records.

The rule's logic is tested both ways in ``test_compare_rules.py``; this pins every field of a
comparison (statuses, notes, warnings, checkpoint order, member rows, the table's text) and
every read-out line, so a change a property test would miss shows as a diff to review.
Update after an intended change: ``MI_ASSERT_UPDATE_SNAPSHOTS=1 python -m pytest
tests/report/test_report_snapshot.py``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mi_assert.report import baseline as bl
from mi_assert.report import readout
from mi_assert.report.compare import (
    compare,
    format_table,
    judge_with_rule,
    normalize_metric,
    parse_tolerances,
    row_claim,
    row_verdict,
    tolerance_for,
)
from mi_assert.report.schema import make_record
from mi_assert.stats import ClaimSpec, all_of, holm_family, undefined_claim
from tests.snapshot import check_case, raised, snapshot_file

snapshot = snapshot_file(Path(__file__).parent / "snapshots" / "report.json")


def _spec(claim: str, mu: float, threshold: float, seed: int, **kw: Any) -> ClaimSpec:
    data = np.random.default_rng(seed).normal(mu, 0.1, 20)
    kw.setdefault("metric", "score")
    return ClaimSpec(claim=claim, samples={0: data}, threshold=threshold, n_resamples=300,
                     model_info={"spec": kw.pop("spec", "zoo-a@s0"),
                                 "checkpoint": kw.pop("checkpoint", "abc")}, **kw)


def _record(ev: Any, test: str, checkpoint: dict[str, Any] | None = None,
            outcome: str = "passed") -> dict[str, Any]:
    context: dict[str, Any] = {"nodeid": test + (f"[{checkpoint['param_id']}]" if checkpoint else "")}
    if checkpoint:
        context["checkpoint"] = checkpoint
    rec = make_record(ev.to_dict(), context)
    rec["test_outcome"] = outcome
    return rec


def _ck(label: str, step: int | None, order: int, series: str | None = None) -> dict[str, Any]:
    return {"label": label, "step": step, "order": order, "series": series,
            "param_id": f"{series or 'm'}:{label}"}


def _runs(shift: float, **kw: Any) -> list[dict[str, Any]]:
    """One suite's records; ``shift`` moves every effect (a new checkpoint's run)."""
    recs = [
        _record(_spec("head clears", 0.8 + shift, 0.5, 1, **kw).evaluate(), "t.py::test_head"),
        _record(_spec("mse below", 0.2 - shift, 0.4, 2, alternative="less", metric="MSE",
                      **kw).evaluate(), "t.py::test_mse"),
        _record(all_of([_spec("ev", 0.9 + shift, 0.7, 3, metric="explained variance", **kw),
                        _spec("l0", 0.3 - shift, 0.5, 4, alternative="less", metric="L0", **kw)],
                       claim="sae ok"), "t.py::test_sae"),
        _record(holm_family([_spec("L1H0", 0.9 + shift, 0.5, 5, **kw),
                             _spec("L1H1", 0.6 + shift, 0.5, 6, **kw)], claim="heads"),
                "t.py::test_heads", outcome="failed"),
        _record(undefined_claim("ratio", "recovery", "zero gap", threshold=0.5,
                                model_info={"spec": kw.get("spec", "zoo-a@s0")}), "t.py::test_ratio",
                outcome="xfailed"),
    ]
    for label, step, order in (("step1000", 1000, 2), ("step200", 200, 1), ("final", None, 3)):
        recs.append(_record(_spec("traj", 0.6 + shift + step / 10000 if step else 0.7 + shift,
                                  0.5, 7 + order, **kw).evaluate(),
                            "t.py::test_traj", _ck(label, step, order)))
    for series in ("a", "b"):
        recs.append(_record(_spec("two series", 0.7 + shift, 0.5, 20, **kw).evaluate(),
                            "t.py::test_series", _ck("step5", 5, 0, series)))
    return recs


def _comparison(base: list[dict[str, Any]], run: list[dict[str, Any]], tol: Any = None,
                name: str = "main") -> dict[str, Any]:
    out = compare(base, run, tol, name=name)
    return {"comparison": out, "table": format_table(out),
            "claims": [row_claim(r) for r in out["rows"]],
            "verdicts": [row_verdict(r) for r in out["rows"]]}


def case_compare_unchanged() -> Any:
    return _comparison(_runs(0.0), _runs(0.0))


def case_compare_regressed() -> Any:
    return _comparison(_runs(0.0), _runs(-0.3))


def case_compare_improved_with_tolerances() -> Any:
    return _comparison(_runs(0.0), _runs(0.2), parse_tolerances(["score:0.05", "0.5"]))


def case_compare_new_missing_and_other_model() -> Any:
    base = _runs(0.0)
    run = _runs(0.0, spec="zoo-b@s0")
    run.pop(0)
    base.pop(1)
    run.append(copy.deepcopy(run[0]))  # the same claim made twice
    run.append(copy.deepcopy(run[-3]))  # twice in one checkpoint series too
    return _comparison(base, run)


def case_compare_unnamed_baseline() -> Any:
    return compare(_runs(0.0), _runs(0.0, spec="zoo-b@s0"))["warnings"]


def case_compare_weights_and_threshold_changed() -> Any:
    base = _runs(0.0)
    run = _runs(0.05, checkpoint="def")
    run[0]["evidence"]["threshold"] = 0.55
    return _comparison(base, run)


def case_compare_against_stored_baseline() -> Any:
    stored = [bl.slim(r) for r in _runs(0.0)]
    return {"slim": stored, **_comparison(stored, _runs(-0.2))}


def case_compare_non_finite() -> Any:
    base = _runs(0.0)
    run = _runs(0.0)
    run[0]["evidence"].update(estimate=None, low=None, high=None, passed=False,
                              reason="undefined: zero gap")
    run[1]["evidence"].update(estimate=None, low=None, high=None, passed=False, reason="")
    return _comparison(base, run)


def case_compare_legacy_records() -> Any:
    """Records from older reports: no ``test`` field, flat checkpoint fields, ``#k`` keys, no
    model in the evidence; the baseline has the trajectory, the run does not (missing rows are
    ordered by the baseline's steps)."""
    base = [bl.slim(r) for r in _runs(0.0)]
    for rec in base:
        rec.pop("test")
    base[0]["key"] += "#2"
    run = [r for r in _runs(-0.2) if r["test"] != "t.py::test_traj"]
    for rec in run:
        rec.pop("test")
        rec["model"] = rec["evidence"].pop("model")
    return _comparison(base, run)


def case_table_of_hand_made_rows() -> Any:
    row = {"status": "ok", "claim": "c", "member": None, "checkpoint": "step5", "baseline": 0.5,
           "new": 0.6, "low": 0.4, "high": 0.7, "delta": 0.1, "tolerance": 0.0,
           "baseline_verdict": None, "new_verdict": None, "note": "", "key": "k",
           "series": None, "checkpoint_step": None, "checkpoint_order": None}
    comparison = {"rows": [row, {**row, "status": "missing", "new": None, "where": "s:step5",
                                 "baseline_verdict": "PASS", "test": "t.py::t"}],
                  "counts": {"ok": 1, "missing": 1, "REGRESSED": 0, "improved": 0, "new": 0}}
    return {"table": format_table(comparison), "claims": [row_claim(r) for r in comparison["rows"]],
            "verdicts": [row_verdict(r) for r in comparison["rows"]]}


def case_empty_comparison() -> Any:
    return _comparison([], [])


def case_judge_rule() -> Any:
    grid = [(b, lo, hi, alt, tol) for b in (0.5,) for lo, hi in ((0.2, 0.4), (0.4, 0.6), (0.6, 0.8),
                                                                  (0.45, 0.5), (0.5, 0.55))
            for alt in ("greater", "less") for tol in (0.0, 0.1)]
    return [[*g, *judge_with_rule(*g)] for g in grid]


def case_tolerances() -> Any:
    tol = parse_tolerances(["Induction-Score:0.1, recovery:0", "0.02", "a:b:0.3"])
    return {"parsed": tol, "lookup": [tolerance_for(m, tol) for m in
                                      ("induction score", "RECOVERY", "mse")],
            "none": tolerance_for("x", {}), "normalized": normalize_metric(" A-b  c "),
            "errors": [raised(lambda: parse_tolerances(["x:high"])),
                       raised(lambda: parse_tolerances(["-1"])),
                       raised(lambda: parse_tolerances(["nan"]))]}


def case_readout_lines() -> Any:
    recs = _runs(0.0)
    out = []
    for rec in recs:
        ev = rec["evidence"]
        out.append({"holds": readout.holds(ev), "relation": readout.relation(ev),
                    "side": readout.side(ev), "headline": readout.headline(ev),
                    "summary": readout.summary(ev),
                    "rebuilt summary": readout.summary({**ev, "summary": ""}),
                    "verdict": readout.verdict(ev),
                    "units": [k for k, _ in readout.member_units(ev, rec["key"])],
                    "expected failure": readout.is_expected_failure(rec)})
    return out


def case_readout_of_partial_records() -> Any:
    """Records missing fields older versions did not write, and a multi-row single claim."""
    spec = _spec("rows", 0.8, 0.5, 30)
    multi = ClaimSpec(claim="rows", metric="score", threshold=0.5, n_resamples=300,
                      samples={s: np.random.default_rng(s).normal(0.8, 0.1, 20) for s in range(2)})
    ev = multi.evaluate().to_dict()
    bare = {k: v for k, v in spec.evaluate().to_dict().items() if k not in ("unit", "summary")}
    return {"multi-row": readout.headline(ev), "no unit": readout.headline(bare),
            "rebuilt": readout.summary(bare),
            "lines": [readout.verdict_line({"claims": 3}), readout.verdict_line({"failed": 2})]}


def case_totals() -> Any:
    recs = _runs(0.0)
    outcomes = [r["test_outcome"] for r in recs]
    return {"outcomes": outcomes, "totals": readout.totals(recs),
            "none": readout.totals([]),
            "lines": [readout.verdict_line(t) for t in (
                {"claims": 3, "failed": 0}, {"claims": 3, "failed": 2, "expected_failures": 2},
                {"claims": 4, "failed": 2, "expected_failures": 1}, {"claims": 2, "failed": 1},
                {})]}


def case_checkpoint_order() -> Any:
    labels = ["step1000", "step200", "final", "step20", "a10b2", "a9b10", None]
    keys = [(1000, 0), (200, 1), (None, 5), (20, 3), (None, 2), (None, 2), (float("nan"), 0)]
    order = sorted(range(len(labels)), key=lambda i: readout.checkpoint_sort_key(
        keys[i][0], keys[i][1], labels[i]))
    return {"order": [labels[i] for i in order],
            "natural": sorted(["x10", "x9", "x100", "y1", "x9a"], key=readout.natural_key)}


def case_sort_keys_and_member_units() -> Any:
    labels = [None, "", "step10", "step9", "10b", "b", "a10b2", "x"]
    member = {"claim": "m", "metric": "s"}
    composite = {"family": [member, member, {"metric": "no claim"}, member,
                            {"claim": "inner", "family": [member, member]}]}
    return {"natural": [list(readout.natural_key(x)) for x in labels],
            "checkpoint": [list(readout.checkpoint_sort_key(*args)) for args in
                           ((100, 2, "s"), (None, 3, "final"), (float("nan"), None, None),
                            (5.5, float("inf"), "x"), (None, None, "step2"))],
            "units": [key for key, _ in readout.member_units(composite, "k")]}


CASES: dict[str, Callable[[], Any]] = {
    name[len("case_"):]: fn for name, fn in globals().items()
    if name.startswith("case_") and callable(fn)}


@pytest.mark.parametrize("name", sorted(CASES))
def test_report_output_matches_snapshot(name: str, snapshot: dict[str, Any]) -> None:
    check_case(name, CASES[name], snapshot)


def test_snapshot_has_no_stale_cases(snapshot: dict[str, Any]) -> None:
    assert set(snapshot) <= set(CASES), f"snapshot cases without a test: {set(snapshot) - set(CASES)}"
