"""The report/baseline/sweep/xdist workflow end to end, through pytester."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mi_assert.report.schema import strip_volatile
from tests.report.helpers import (
    CLAIMS_MODULE,
    assert_self_contained,
    induction_head,
    page_figures,
    save_planted_checkpoint,
)

SUITE = """
import pytest
from claims import assert_induction

@pytest.mark.mi_seeds(0)
def test_induction(mi_model, mi_seed):
    assert_induction(mi_model, 1, 0, seeds=(mi_seed, mi_seed + 1))
"""


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile(claims=CLAIMS_MODULE, test_suite=SUITE)
    return pytester


def _baseline_files(root: Path, name: str = "main") -> list[Path]:
    return sorted((root / ".mi_baselines" / name).glob("*.json"))


def test_baseline_save_compare_and_regression(suite: pytest.Pytester) -> None:
    assert induction_head(0) == (1, 0)  # the suite asserts on L1H0
    model = save_planted_checkpoint(suite.path / "model")

    saved = suite.runpytest("--mi-model", "model", "--mi-save-baseline", "main")
    saved.assert_outcomes(passed=1)
    saved.stdout.fnmatch_lines(["*baseline 'main' saved: 1 claim(s) in 1 file(s)*"])
    (path,) = _baseline_files(suite.path)
    content = path.read_text()
    doc = json.loads(content)
    assert doc["kind"] == "mi-assert-baseline" and doc["schema_version"] == 2
    assert doc["records"][0]["key"] == "test_suite.py::test_induction[seed0]::L1H0 is an induction head"

    # saving again without --mi-baseline-overwrite: usage error before running, file untouched
    again = suite.runpytest("--mi-model", "model", "--mi-save-baseline", "main")
    assert again.ret == pytest.ExitCode.USAGE_ERROR
    again.stderr.fnmatch_lines(["*baseline 'main' already exists*nothing was overwritten*--mi-baseline-overwrite*"])
    assert path.read_text() == content

    # unchanged model: ok, run passes
    same = suite.runpytest("--mi-model", "model", "--mi-compare", "main", "--mi-compare-fail")
    assert same.ret == 0
    same.stdout.fnmatch_lines(["*compare with baseline 'main'*",
                               "ok *test_suite.py::test_induction[[]seed0[]]*L1H0 is an induction head*",
                               "1 ok"])

    # the same weights under another spec: compared, but flagged
    other = suite.runpytest("--mi-model", "planted-induction@s0", "--mi-compare", "main")
    other.stdout.fnmatch_lines(["ok *OTHER MODEL*", "WARNING: baseline 'main' was recorded on model*model*"])

    # weaker induction head (W_Q halved): the claim still passes its threshold, but regressed
    save_planted_checkpoint(model, q_scale=0.5)
    soft = suite.runpytest("--mi-model", "model", "--mi-compare", "main")
    assert soft.ret == 0  # without --mi-compare-fail the diff is informational
    soft.stdout.fnmatch_lines(["REGRESSED *L1H0 is an induction head*0.8* 0.4*[[]0.* PASS *weights changed*"])
    failing = suite.runpytest("--mi-model", "model", "--mi-compare", "main", "--mi-compare-fail")
    failing.assert_outcomes(passed=1)
    assert failing.ret == pytest.ExitCode.TESTS_FAILED
    failing.stdout.fnmatch_lines(["*1 claim(s) REGRESSED beyond tolerance against baseline 'main'*"])
    tolerant = suite.runpytest("--mi-model", "model", "--mi-compare", "main", "--mi-compare-fail",
                               "--mi-tolerance", "induction_score:0.5")
    assert tolerant.ret == 0
    tolerant.stdout.fnmatch_lines(["ok *L1H0 is an induction head*0.5*weights changed*"])

    # the induction head zeroed: the claim fails and the diff says REGRESSED
    save_planted_checkpoint(model, zero_heads=[(1, 0)])
    zeroed = suite.runpytest("--mi-model", "model", "--mi-compare", "main", "--mi-compare-fail")
    zeroed.assert_outcomes(failed=1)
    zeroed.stdout.fnmatch_lines(["REGRESSED *L1H0 is an induction head* PASS->FAIL *weights changed, verdict PASS->FAIL"])
    assert path.read_text() == content

    # overwrite is explicit, and then replaces the file
    over = suite.runpytest("--mi-model", "model", "--mi-save-baseline", "main", "--mi-baseline-overwrite")
    over.assert_outcomes(failed=1)
    assert path.read_text() != content


def test_bad_baselines_and_report_dirs(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_nothing():\n    pass\n")
    folder = pytester.path / ".mi_baselines"
    (folder / "corrupt").mkdir(parents=True)
    (folder / "corrupt" / "m.json").write_text('{"kind": "mi-assert-baseline", "records": [')
    (folder / "old").mkdir()
    (folder / "old" / "m.json").write_text(json.dumps(
        {"kind": "mi-assert-baseline", "schema_version": 1, "records": []}))
    (folder / "future").mkdir()
    (folder / "future" / "m.json").write_text(json.dumps(
        {"kind": "mi-assert-baseline", "schema_version": 99, "records": []}))
    (folder / "report").mkdir()
    (folder / "report" / "m.json").write_text(json.dumps(
        {"kind": "mi-assert-report", "schema_version": 2, "records": []}))
    cases = {
        ("--mi-compare", "corrupt"): "*corrupt/m.json is not valid JSON (line 1, column*",
        ("--mi-compare", "future"): "*schema_version 99 is not supported*reads version 2)*",
        ("--mi-compare", "old"): "*old/m.json: schema_version 1 is not supported*reads version 2)"
                                 "*written by an older mi-assert*--mi-baseline-overwrite*",
        ("--mi-compare", "report"): "*not an mi-assert-baseline file (its 'kind' is 'mi-assert-report')*",
        ("--mi-compare", "nope"): "*baseline 'nope' not found*available: corrupt, future, old, report*",
        ("--mi-compare", "../x"): "*baseline name '../x' is not allowed*",
        ("--mi-compare-fail",): "*--mi-compare-fail needs --mi-compare NAME*",
        ("--mi-compare", "future", "--mi-tolerance", "recovery=0.1"): "*tolerance 'recovery=0.1' not understood*",
        ("--mi-report", "conftest_is_a_file.txt/sub"): "*report directory*cannot be written*",
        ("--mi-remote", "sometimes"): "*--mi-remote 'sometimes' not understood*",
    }
    (pytester.path / "conftest_is_a_file.txt").write_text("x")
    for args, pattern in cases.items():
        result = pytester.runpytest(*args)
        assert result.ret == pytest.ExitCode.USAGE_ERROR, args
        result.stderr.fnmatch_lines([f"ERROR: mi-assert: *{pattern.lstrip('*')}"])


MULTI = """
import pytest
from claims import assert_induction

@pytest.mark.mi_seeds(0, 5)
def test_induction(mi_model, mi_seed):
    assert_induction(mi_model, 1, 0, seeds=(mi_seed,))

@pytest.mark.mi_seeds(0, 5)
def test_not_induction(mi_model, mi_seed):
    assert_induction(mi_model, 0, 1, seeds=(mi_seed,))
"""


def test_xdist_report_equals_serial_report(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(claims=CLAIMS_MODULE, test_multi=MULTI)
    save_planted_checkpoint(pytester.path / "model")
    common = ["--mi-model", "model", "-p", "no:cacheprovider"]
    serial = pytester.runpytest(*common, "--mi-report", "serial", "--junitxml", "junit.xml")
    serial.assert_outcomes(passed=2, failed=2)
    parallel = pytester.runpytest_subprocess(*common, "-n", "2", "--mi-report", "parallel")
    parallel.assert_outcomes(passed=2, failed=2)
    parallel.stdout.fnmatch_lines(["*mi-assert claims*", "*FAIL *L0H1 is an induction head*",
                                   "*report written: *parallel/report.html*"])
    docs = [json.loads((pytester.path / d / "report.json").read_text()) for d in ("serial", "parallel")]
    assert len(docs[0]["records"]) == 4 and docs[0]["complete"]
    assert {r["worker"] for r in docs[1]["records"]} == {"gw0", "gw1"}
    assert strip_volatile(docs[0]) == strip_volatile(docs[1])
    assert {"induction score per head", "attention pattern", "scores per prompt"} <= set(
        docs[0]["records"][0]["figures"])
    page = (pytester.path / "parallel" / "report.html").read_text()
    kinds = sorted(f["kind"] for f in page_figures(page).values())
    assert kinds.count("forest") == 4 and len(kinds) >= 4 * 4  # per-seed plot + 3 figures per claim
    assert_self_contained(page)
    junit = (pytester.path / "junit.xml").read_text()
    assert 'name="mi.0.claim" value="L1H0 is an induction head"' in junit
    assert 'name="mi.0.verdict" value="PASS"' in junit and 'name="mi.0.estimate"' in junit


SWEEP = """
import pytest
from claims import assert_induction

@pytest.mark.mi_checkpoints("ckpts/step*")
def test_induction_forms(mi_model):
    assert_induction(mi_model, 1, 0, seeds=(0,), threshold=0.3)

@pytest.mark.mi_checkpoints("ckpts/step*")
def test_model_shape(mi_model):
    assert mi_model.n_layers == 2
"""


def test_checkpoint_sweep_trajectory_and_baseline(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(claims=CLAIMS_MODULE, test_sweep=SWEEP)
    for step, scale in ((10, 0.4), (20, 0.5), (30, 1.0)):
        save_planted_checkpoint(pytester.path / "ckpts" / f"step{step}", q_scale=scale)
    result = pytester.runpytest("--mi-report", "rep", "--mi-save-baseline", "sweep", "-rA")
    result.assert_outcomes(passed=5, failed=1)  # step10's induction head is too weak
    out = result.stdout.str()
    for step in (10, 20, 30):  # each checkpoint loaded once, with progress shown
        assert out.count(f"loading checkpoint step{step} ") == 1
    doc = json.loads((pytester.path / "rep" / "report.json").read_text())
    (traj,) = doc["trajectories"]
    assert traj["key"] == "test_sweep.py::test_induction_forms::L1H0 is an induction head"
    assert [p["x"] for p in traj["points"]] == [10, 20, 30]
    estimates = [p["estimate"] for p in traj["points"]]
    assert estimates[0] < 0.3 < estimates[1] < estimates[2]
    assert "Trajectories across checkpoints" in (pytester.path / "rep" / "report.html").read_text()
    assert len(_baseline_files(pytester.path, "sweep")) == 3  # one file per checkpoint
    compared = pytester.runpytest("--mi-compare", "sweep", "--mi-compare-fail")
    compared.assert_outcomes(passed=5, failed=1)
    compared.stdout.fnmatch_lines(["ok *L1H0 is an induction head @step10*", "3 ok"])


COMPOSITE = """
from claims import assert_induction_and_quiet

def test_only_one_head_induces(mi_model):
    assert_induction_and_quiet(mi_model, 1, 0, 0, 1)
"""


def test_composite_baseline_compares_every_member(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(claims=CLAIMS_MODULE, test_comp=COMPOSITE)
    model = save_planted_checkpoint(pytester.path / "model")
    saved = pytester.runpytest("--mi-model", "model", "--mi-save-baseline", "main")
    saved.assert_outcomes(passed=1)
    saved.stdout.fnmatch_lines(["*PASS *only L1H0 induces [[]deciding: *[]]*bound *threshold*"])
    (path,) = _baseline_files(pytester.path)
    (rec,) = json.loads(path.read_text())["records"]
    assert [m["claim"] for m in rec["members"]] == ["L1H0 is an induction head",
                                                    "L0H1 is not an induction head"]
    save_planted_checkpoint(model, q_scale=0.5)
    soft = pytester.runpytest("--mi-model", "model", "--mi-compare", "main")
    soft.stdout.fnmatch_lines([
        "REGRESSED *test_comp.py::test_only_one_head_induces*only L1H0 induces / member: "
        "L1H0 is an induction head*weights changed*",
        "ok *only L1H0 induces / member: L0H1 is not an induction head*"])
