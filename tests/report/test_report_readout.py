"""What reports print reads true; composite members, test ids and checkpoint order in the
baseline diff; totals; the module layout (synthetic records, no model needed)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mi_assert.report import baseline as bl
from mi_assert.report.collect import junit_properties, to_records
from mi_assert.report.compare import compare, format_table, judge
from mi_assert.report.html import render_html
from mi_assert.report.json_report import build_report
from mi_assert.report.readout import natural_key, relation, totals
from mi_assert.report.schema import make_record
from mi_assert.report.summary import summary_lines
from mi_assert.stats.composite import all_of
from mi_assert.stats.evidence import Evidence, SeedResult

ROOT = Path(__file__).resolve().parents[2]


def claim_lines(lines: list[str]) -> list[str]:
    """The claim lines of the terminal summary (indented under their suite and test)."""
    return [ln[4:] for ln in lines if ln.startswith("    ") and not ln.startswith("    (+")]


def _ev(claim: str, estimate: float, low: float, high: float, threshold: float,
        alternative: str = "greater", metric: str = "score", n: int = 32, spec: str = "m",
        ckpt: str = "h1", seeds: int = 1) -> Evidence:
    bound = low if alternative == "greater" else high
    passed = bound > threshold if alternative == "greater" else bound < threshold
    rows = tuple(SeedResult(seed=s, estimate=estimate, low=low, high=high, bound=bound, n=n,
                            passed=passed, threshold=threshold, alternative=alternative)
                 for s in range(seeds))
    return Evidence(claim=claim, metric=metric, estimate=estimate, low=low, high=high, bound=bound,
                    n=n, threshold=threshold, alpha=0.05, alternative=alternative, passed=passed,
                    per_seed=rows, model={"spec": spec, "checkpoint": ckpt})


def _rec(ev: Evidence, nodeid: str = "t.py::test_sae", checkpoint: dict | None = None,
         outcome: str | None = None) -> dict:
    rec = make_record(ev.to_dict(), {"nodeid": nodeid, "checkpoint": checkpoint})
    if outcome is not None:
        rec["test_outcome"] = outcome
    return rec


def _sae(ev_est: float, ev_low: float, ev_high: float, l0: tuple[float, float, float] = (30, 25, 35)) -> dict:
    members = [_ev("explained variance >= 0.5", ev_est, ev_low, ev_high, 0.5, metric="explained_variance"),
               _ev("L0 < 64", *l0, 64, alternative="less", metric="l0")]
    return _rec(all_of(members, claim="the SAE reconstructs", model_info={"spec": "m", "checkpoint": "h1"}))


def test_sae_member_regression_is_seen_under_a_composite_headline() -> None:
    tight_l0 = (60, 57, 63)
    old, new = _sae(0.850, 0.83, 0.87, tight_l0), _sae(0.609, 0.58, 0.64, tight_l0)
    # the headline is the deciding member (the L0 member, which has the smaller margin in both
    # runs): it did not move, so only the per-member comparison sees the EV drop
    assert old["evidence"]["deciding"] == new["evidence"]["deciding"] == "L0 < 64"
    assert old["evidence"]["estimate"] == new["evidence"]["estimate"] == 60
    comp = compare([bl.slim(old)], [new], name="main")
    status = {r["member"]: r["status"] for r in comp["rows"]}
    assert status == {"explained variance >= 0.5": "REGRESSED", "L0 < 64": "ok"}
    (row,) = [r for r in comp["rows"] if r["status"] == "REGRESSED"]
    assert row["key"] == "t.py::test_sae::the SAE reconstructs::explained variance >= 0.5"
    assert row["baseline"] == 0.85 and row["new"] == 0.609
    assert row["rule"] == "high 0.640 < baseline 0.850 - 0"
    line = next(x for x in format_table(comp) if x.startswith("REGRESSED"))
    assert "the SAE reconstructs / member: explained variance >= 0.5" in line and "0.850" in line
    assert comp["counts"]["REGRESSED"] == 1
    same = compare([bl.slim(old)], [_sae(0.851, 0.83, 0.87, tight_l0)])
    assert {r["status"] for r in same["rows"]} == {"ok"}


def test_baseline_file_keeps_every_member(tmp_path: Path) -> None:
    bl.save_baseline(tmp_path, "main", [_sae(0.85, 0.83, 0.87)])
    (rec,) = bl.load_baseline(tmp_path, "main")
    assert [m["claim"] for m in rec["members"]] == ["explained variance >= 0.5", "L0 < 64"]
    assert rec["members"][0]["estimate"] == 0.85 and rec["members"][1]["alternative"] == "less"
    comp = compare(bl.load_baseline(tmp_path, "main"), [_sae(0.609, 0.58, 0.64)])
    assert comp["counts"]["REGRESSED"] == 1


@pytest.mark.parametrize(("alternative", "base", "low", "high", "status"), [
    # greater: only the upper end below the baseline is a regression
    ("greater", 0.8, 0.60, 0.75, "REGRESSED"),
    ("greater", 0.8, 0.60, 0.85, "ok"),       # lower end below, upper end above: not regressed
    ("greater", 0.8, 0.82, 0.90, "improved"),
    ("greater", 0.8, 0.75, 0.90, "ok"),       # lower end below the baseline is not "improved"
    # less: only the lower end above the baseline is a regression
    ("less", 0.2, 0.25, 0.30, "REGRESSED"),
    ("less", 0.2, 0.15, 0.30, "ok"),          # upper end above, lower end below: not regressed
    ("less", 0.2, 0.05, 0.10, "improved"),
    ("less", 0.2, 0.05, 0.25, "ok"),
])
def test_regression_side_for_both_directions(alternative, base, low, high, status) -> None:
    assert judge(base, low, high, alternative, 0.0) == status
    threshold = 0.1 if alternative == "greater" else 0.9
    mid = (low + high) / 2
    old = _rec(_ev("c", base, base - 0.01, base + 0.01, threshold, alternative))
    new = _rec(_ev("c", mid, low, high, threshold, alternative))
    (row,) = compare([bl.slim(old)], [new])["rows"]
    assert row["status"] == status


def test_diff_table_names_the_test_and_orders_checkpoints_by_step() -> None:
    def ck(step: int) -> dict:
        return {"label": f"step{step}", "series": "run", "step": step, "order": step,
                "param_id": f"step{step}"}

    claim = "L1H2 is an induction head"
    base, run = [], []
    for nodeid in ("t.py::test_a", "t.py::test_b"):
        for step in (1000, 200, 30):
            base.append(bl.slim(_rec(_ev(claim, 0.8, 0.7, 0.9, 0.3), f"{nodeid}[step{step}]", ck(step))))
            drop = 0.5 if nodeid.endswith("_b") and step == 1000 else 0.0
            run.append(_rec(_ev(claim, 0.8 - drop, 0.7 - drop, 0.9 - drop, 0.1),
                            f"{nodeid}[step{step}]", ck(step)))
    comp = compare(base, run)
    assert [(r["test"], r["checkpoint"]) for r in comp["rows"]] == [
        (t, f"step{s}") for t in ("t.py::test_a", "t.py::test_b") for s in (30, 200, 1000)]
    lines = format_table(comp)
    assert lines[0].split()[:3] == ["status", "test", "claim"]
    assert lines[1].startswith("REGRESSED  t.py::test_b  L1H2 is an induction head @step1000")
    ok = [line for line in lines if line.startswith("ok")]
    assert [line.split()[1] for line in ok] == ["t.py::test_a"] * 3 + ["t.py::test_b"] * 2
    assert [line.split("@")[1].split()[0] for line in ok] == [
        "step30", "step200", "step1000", "step30", "step200"]
    # checkpoint labels without a step (local folders): natural order of the labels
    assert sorted(["ckpt-1000", "ckpt-200", "ckpt-30"], key=natural_key) == [
        "ckpt-30", "ckpt-200", "ckpt-1000"]


def test_every_surface_prints_the_comparison_that_holds() -> None:
    failing = _ev("L0H1 is an induction head", 0.35, 0.25, 0.45, 0.3)
    less_pass = _ev("L0 < 64", 30, 25, 35, 64, alternative="less", metric="l0")
    assert relation(failing.to_dict()) == "bound 0.250 <= threshold 0.300"
    assert relation(less_pass.to_dict()) == "bound 35.000 < threshold 64.000"
    assert relation({"bound": 0.30004, "threshold": 0.3, "alternative": "greater"}) == (
        "bound 0.30004 > threshold 0.30000")
    records = [_rec(failing), _rec(less_pass, "t.py::test_l0")]
    lines = claim_lines(summary_lines(records))
    (failed,) = [ln for ln in lines if ln.startswith("FAIL")]
    assert "bound 0.250 <= threshold 0.300" in failed
    assert any("bound 35.000 < threshold 64.000" in ln for ln in lines) and len(lines) == 2
    page = render_html(build_report(records))
    assert "bound 0.250 &lt;= threshold 0.300" in page and "bound 0.250 &gt;" not in page
    assert failing.summary_line() in page.replace("&lt;", "<").replace("&#x27;", "'")
    props = dict(junit_properties(records))
    assert props["mi.0.comparison"] == "bound 0.250 <= threshold 0.300"
    assert props["mi.0.summary"] == failing.summary_line() and props["mi.0.verdict"] == "FAIL"
    undefined = Evidence(claim="ratio", metric="r", estimate=float("nan"), low=float("nan"),
                         high=float("nan"), bound=float("nan"), n=0, threshold=0.5, alpha=0.05,
                         alternative="greater", passed=False, reason="undefined: denominator <= 0")
    assert relation(undefined.to_dict()) == "bound nan, threshold 0.500: undefined: denominator <= 0"
    assert "undefined: denominator" in claim_lines(summary_lines([_rec(undefined)]))[0]


def test_composite_card_shows_the_deciding_member_and_a_member_table() -> None:
    rec = _sae(0.45, 0.40, 0.49)  # EV fails: it decides
    ev = rec["evidence"]
    assert ev["deciding"] == "explained variance >= 0.5" and ev["metric"] == "explained_variance"
    page = render_html(build_report([rec]))
    assert "deciding member: explained variance &gt;= 0.5" in page
    assert '<table class="members">' in page and 'class="deciding"' in page
    assert "bound 0.400 &lt;= threshold 0.500" in page and "bound 35.000 &lt; threshold 64.000" in page
    (line,) = claim_lines(summary_lines([rec]))
    assert "[deciding: explained variance >= 0.5]" in line and "bound 0.400 <= threshold 0.500" in line
    props = dict(junit_properties([rec]))
    assert props["mi.0.deciding"] == "explained variance >= 0.5"
    assert props["mi.0.member.1.comparison"] == "bound 35.000 < threshold 64.000"


def test_totals_count_failures() -> None:
    good = _ev("holds", 0.8, 0.7, 0.9, 0.3)
    bad = _ev("does not hold", 0.2, 0.1, 0.3, 0.3)
    doc = build_report([_rec(good, "t.py::a"), _rec(bad, "t.py::b", outcome="failed"),
                        _rec(bad, "t.py::c", outcome="passed")])
    assert doc["totals"] == {"claims": 3, "passed": 1, "failed": 2, "expected_failures": 1,
                             "unexpected_failures": 1,
                             "verdict": "2 of 3 claim(s) FAILED (1 expected by their tests, 1 unexpected)"}
    page = render_html(doc)
    assert "1 passed" in page and "1 failed unexpectedly" in page and "1 expected failures" in page
    assert "all 3" not in page
    assert "2 of 3 claim(s) FAILED" in page
    lines = summary_lines(doc["records"])
    assert lines[-1].startswith("2 of 3 claim(s) FAILED")
    assert lines[0] == "t.py", lines
    assert "    (+1 expected failure(s): FAIL as the test expected)" in lines
    assert len(claim_lines(lines)) == 2  # the expected failure is folded into the count
    assert totals([_rec(good)])["verdict"] == "all 1 claim(s) passed"
    assert totals([])["verdict"] == "no claims recorded"


def test_to_records_keeps_the_evidence_layout() -> None:
    from mi_assert.record import Recorded

    (rec,) = to_records([Recorded(_ev("c", 0.8, 0.7, 0.9, 0.3), {"nodeid": "t.py::x"})])
    assert rec["evidence"]["schema_version"] == 2 and rec["test"] == "t.py::x"
    assert rec["evidence"]["summary"].endswith("PASS")


def test_html_and_json_report_do_not_import_each_other() -> None:
    code = ("import sys, mi_assert.report.html; a = 'mi_assert.report.json_report' in sys.modules; "
            "[sys.modules.pop(m) for m in list(sys.modules) if m.startswith('mi_assert.report')]; "
            "import mi_assert.report.json_report; b = 'mi_assert.report.html' in sys.modules; "
            "print(a, b); sys.exit(a or b)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


def test_old_report_layout_is_refused_with_a_clear_error(tmp_path: Path) -> None:
    from mi_assert.errors import MiAssertInputError
    from mi_assert.report.schema import REPORT_KIND, check_document

    doc = {"kind": REPORT_KIND, "schema_version": 1, "records": []}
    with pytest.raises(MiAssertInputError, match="schema_version 1 is not supported.*--mi-report"):
        check_document(doc, REPORT_KIND, "report.json")
    assert check_document(doc, REPORT_KIND, "report.json", versions=(1, 2)) is doc
    json.dumps(build_report([_sae(0.8, 0.7, 0.9)]), allow_nan=False)


def _diff_reports(tmp_path: Path, old: dict, new: dict, *args: str) -> subprocess.CompletedProcess:
    (tmp_path / "old.json").write_text(json.dumps(old))
    (tmp_path / "new.json").write_text(json.dumps(new))
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "diff_reports.py"),
                           str(tmp_path / "old.json"), str(tmp_path / "new.json"), *args],
                          capture_output=True, text=True, timeout=120)


def _schema1(doc: dict) -> dict:
    """The same report in the layout before the engine rewrite (no unit/summary/...)."""
    old = json.loads(json.dumps(doc))
    old["schema_version"] = 1
    for rec in old["records"]:
        for ev in [rec["evidence"], *rec["evidence"]["family"]]:
            for key in ("unit", "reason", "deciding", "composite", "envelope", "summary",
                        "schema_version"):
                ev.pop(key, None)
    return old


def test_diff_reports_script(tmp_path: Path) -> None:
    single = _ev("single", 0.8, 0.7, 0.9, 0.3)
    multi = _ev("multi", 0.8, 0.7, 0.9, 0.3, seeds=3)
    sae = _sae(0.85, 0.83, 0.87)
    base = build_report([_rec(single, "t.py::a"), _rec(multi, "t.py::b"), sae])
    same = _diff_reports(tmp_path, _schema1(base), base)
    assert same.returncode == 0 and same.stdout.strip().endswith("no difference"), same.stdout

    # a multi-row claim whose rows moved (verdicts kept): printed, exit 0
    moved = _ev("multi", 0.81, 0.71, 0.91, 0.3, seeds=3)
    out = _diff_reports(tmp_path, base, build_report([_rec(single, "t.py::a"), _rec(moved, "t.py::b"), sae]))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "CHANGED t.py::b::multi (headline: estimate, low, high, bound)" in out.stdout
    assert "row t.py::b::multi | seed 2 (estimate, low, high, bound)" in out.stdout
    # ... within --tol: no difference
    assert "no difference" in _diff_reports(tmp_path, base, build_report(
        [_rec(single, "t.py::a"), _rec(moved, "t.py::b"), sae]), "--tol", "0.02").stdout

    # a single-row claim's numbers, a member's numbers and a verdict changed: exit 1
    nudged = _ev("single", 0.8, 0.70001, 0.9, 0.3)
    fell = _sae(0.45, 0.40, 0.49)
    out = _diff_reports(tmp_path, _schema1(base), build_report(
        [_rec(nudged, "t.py::a"), _rec(multi, "t.py::b"), fell]))
    assert out.returncode == 1, out.stdout + out.stderr
    assert "CHANGED t.py::a::single (single-row claim: low, bound)" in out.stdout
    assert "VERDICT t.py::test_sae::the SAE reconstructs: PASS -> FAIL" in out.stdout
    assert ("VERDICT t.py::test_sae::the SAE reconstructs :: member explained variance >= 0.5: "
            "PASS -> FAIL") in out.stdout
    assert "row t.py::test_sae::the SAE reconstructs :: member explained variance >= 0.5 | seed 0" in out.stdout

    gone = _diff_reports(tmp_path, base, build_report([_rec(single, "t.py::a")]))
    assert gone.returncode == 0 and "ONLY IN OLD t.py::b::multi" in gone.stdout
    (tmp_path / "bad.json").write_text(json.dumps({"kind": "mi-assert-baseline"}))
    bad = subprocess.run([sys.executable, str(ROOT / "scripts" / "diff_reports.py"),
                          str(tmp_path / "bad.json"), str(tmp_path / "new.json")],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "not an mi-assert report.json" in bad.stderr
