"""``python -m mi_assert.report merge``: shard reports merged equal the unsharded run's report,
and every kind of bad input is refused with the file named."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import mi_assert
from mi_assert.errors import MiAssertInputError
from mi_assert.report.__main__ import main
from mi_assert.report.json_report import build_report, write_json
from mi_assert.report.merge import load_input, merge_reports
from mi_assert.report.schema import strip_volatile
from mi_assert.shard import Shard, split
from tests.report.helpers import CLAIMS_MODULE, save_planted_checkpoint

SYNTH = '''
import numpy as np
from mi_assert.stats.claims import ClaimSpec
from mi_assert.verdict import raise_if_failed


def claim(name, mean, seed=0, threshold=0.5):
    def samples(s):
        rng = np.random.default_rng(s)
        return np.clip(mean + 0.05 * rng.standard_normal(24), 0.0, 1.0)

    spec = ClaimSpec(name, "score", samples, threshold=threshold, seeds=[seed], n_resamples=200)
    return raise_if_failed(spec.evaluate())
'''
ALPHA = '''
import pytest
from synth import claim

@pytest.mark.mi_seeds(0, 1)
def test_strong(mi_seed):
    claim("strong holds", 0.9, mi_seed)

@pytest.mark.mi_seeds(0, 1)
def test_weak(mi_seed):
    claim("weak holds", 0.2, mi_seed)

def test_expected_failure():
    with pytest.raises(AssertionError):
        claim("expected to fail", 0.1)
'''
SWEEP = '''
import pytest
from claims import assert_induction

@pytest.mark.mi_checkpoints("ckpts/step*")
def test_induction_over_training(mi_model):
    assert_induction(mi_model, 1, 0, seeds=(0,), threshold=0.3)
'''
GAMMA = '''
from synth import claim

def test_gamma():
    claim("gamma holds", 0.8)
    claim("gamma holds", 0.85)

def test_no_claims():
    pass
'''
COMMON = ("-p", "no:cacheprovider", "-q")


def _doc(root: Path, name: str) -> dict[str, Any]:
    return json.loads((root / name / "report.json").read_text())


def _comparable(doc: dict[str, Any]) -> Any:
    plain = strip_volatile(doc)
    plain["meta"].pop("merged", None)
    return plain


def test_merged_shards_equal_the_unsharded_run(pytester: pytest.Pytester,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    pytester.makepyfile(synth=SYNTH, claims=CLAIMS_MODULE, test_alpha=ALPHA, test_sweep=SWEEP,
                        test_gamma=GAMMA)
    for step, scale in ((10, 0.4), (20, 1.0)):
        save_planted_checkpoint(pytester.path / "ckpts" / f"step{step}", q_scale=scale)
    # a baseline of some claims, so that every shard's comparison has rows another shard ran
    pytester.runpytest(*COMMON, "test_alpha.py", "test_gamma.py", "-k", "strong or gamma",
                       "--mi-save-baseline", "main")
    full = pytester.runpytest(*COMMON, "--mi-report", "full", "--mi-compare", "main")
    full.assert_outcomes(passed=6, failed=3)
    for i in (1, 2):
        shard = pytester.runpytest(*COMMON, "--mi-shard", f"{i}/2", "--mi-report", f"s{i}",
                                   "--mi-compare", "main")
        assert shard.ret == pytest.ExitCode.TESTS_FAILED
    shards = [_doc(pytester.path, f"s{i}") for i in (1, 2)]
    assert [s["meta"]["shard"]["selected"] for s in shards] == [5, 4]
    assert all(s["comparison"]["counts"]["missing"] for s in shards)  # each lacks the other's

    code = main(["merge", str(pytester.path / "merged"), str(pytester.path / "s2"),
                 str(pytester.path / "s1")])
    assert code == 0
    out = capsys.readouterr().out
    assert "mi-assert merge: shard(s) 2/2, 1/2: 4 of 9 claim(s) FAILED (1 expected by their " \
           "tests, 3 unexpected)" in out
    assert "report written: " in out and "merged/report.html" in out
    merged, unsharded = _doc(pytester.path, "merged"), _doc(pytester.path, "full")
    assert merged["complete"] and unsharded["complete"]
    assert _comparable(merged) == _comparable(unsharded)
    assert merged["totals"]["verdict"] == unsharded["totals"]["verdict"]
    assert len(merged["trajectories"]) == 1 and len(merged["trajectories"][0]["points"]) == 2
    assert merged["comparison"]["counts"]["missing"] == 0
    assert [r["key"] for r in merged["records"]] == [r["key"] for r in unsharded["records"]]
    assert "shard" not in merged["meta"]
    assert [i["shard"] for i in merged["meta"]["merged"]["inputs"]] == ["2/2", "1/2"]
    page = (pytester.path / "merged" / "report.html").read_text()
    assert page.startswith("<!") and "strong holds" in page

    # merging is deterministic: the same inputs in another order give the same document
    assert main(["merge", str(pytester.path / "again"), str(pytester.path / "s1"),
                 str(pytester.path / "s2")]) == 0
    assert _comparable(_doc(pytester.path, "again")) == _comparable(merged)
    # a shard on its own is an incomplete run
    capsys.readouterr()
    assert main(["merge", str(pytester.path / "half"), str(pytester.path / "s1")]) == 2
    assert "shard(s) 2/2 not given" in capsys.readouterr().err
    assert main(["merge", "--allow-incomplete", str(pytester.path / "half"),
                 str(pytester.path / "s1")]) == 0
    assert "missing shard(s) 2/2" in capsys.readouterr().out
    half = _doc(pytester.path, "half")
    assert half["complete"] is False and half["meta"]["merged"]["missing_shards"] == ["2/2"]


# ----- bad input (documents made here, no pytest runs) ---------------------------------------

ALL = ["test_a.py::test_1", "test_a.py::test_2", "test_b.py::test_3"]


def _rec(nodeid: str, claim: str = "holds", passed: bool = True) -> dict[str, Any]:
    return {"key": f"{nodeid}::{claim}", "test": nodeid, "nodeid": nodeid, "checkpoint": None,
            "worker": None, "test_outcome": "passed" if passed else "failed", "figures": {},
            "evidence": {"claim": claim, "passed": passed, "metric": "score", "estimate": 0.9}}


def _shard_report(folder: Path, index: int, count: int = 2, nodeids: list[str] = ALL,
                  **doc: Any) -> Path:
    keep, plan = split(nodeids, Shard(index, count))
    records = [_rec(n) for n, k in zip(nodeids, keep, strict=True) if k]
    return _write(folder, records, shard=plan, **doc)


def _write(folder: Path, records: list[dict[str, Any]], shard: dict[str, Any] | None = None,
           version: str = mi_assert.__version__, **doc: Any) -> Path:
    meta: dict[str, Any] = {"mi_assert": version}
    if shard is not None:
        meta["shard"] = shard
    report = build_report(records, meta)
    report.update(doc)
    folder.mkdir(parents=True, exist_ok=True)
    write_json(folder, report)
    return folder


def _refused(dirs: list[Path], allow_incomplete: bool = False) -> str:
    with pytest.raises(MiAssertInputError) as info:
        merge_reports([load_input(d) for d in dirs], allow_incomplete)
    return str(info.value)


def test_unreadable_inputs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "cut").mkdir()
    (tmp_path / "cut" / "report.json").write_text('{"kind": "mi-assert-report", "rec')
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "report.json").write_text('{"kind": "mi-assert-baseline"}')
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "report.json").write_text(
        '{"kind": "mi-assert-report", "schema_version": 1, "records": []}')
    cases = {
        "nowhere": "nowhere: no such report folder",
        "empty": "empty: has no report.json (did that job run with --mi-report",
        "cut": "cut/report.json is not valid JSON (line 1, column",
        "other": "not an mi-assert-report file (its 'kind' is 'mi-assert-baseline')",
        "old": "old/report.json: schema_version 1 is not supported by this mi-assert (it reads "
               "version 2)",
    }
    good = _shard_report(tmp_path / "good", 1)
    for name, message in cases.items():
        assert main(["merge", str(tmp_path / "out"), str(good), str(tmp_path / name)]) == 2
        err = capsys.readouterr().err
        assert err.startswith("mi-assert merge: error: ") and message in err, (name, err)
    assert not (tmp_path / "out").exists()  # nothing written on refusal
    assert main(["merge", str(good), str(good)]) == 2
    assert "is also an input" in capsys.readouterr().err


def test_refused_combinations(tmp_path: Path) -> None:
    s1, s2 = _shard_report(tmp_path / "s1", 1), _shard_report(tmp_path / "s2", 2)
    merged = merge_reports([load_input(s1), load_input(s2)])
    assert [r["nodeid"] for r in merged["records"]] == ALL and merged["complete"]

    assert "given twice" in _refused([s1, s1])
    twin = _shard_report(tmp_path / "twin", 1)
    assert _refused([s1, twin]) == (f"shard 1/2 is given twice: {s1 / 'report.json'} and "
                                    f"{twin / 'report.json'}")
    three = _shard_report(tmp_path / "three", 2, count=3)
    assert "shards come from different runs: their shard counts differ" in _refused([s1, three])
    other = _shard_report(tmp_path / "other", 2, nodeids=[*ALL, "test_c.py::test_4"])
    assert "their collected tests differ (a different commit" in _refused([s1, other])
    plain = _write(tmp_path / "plain", [_rec("test_z.py::test_z")])
    assert "plain/report.json is not a --mi-shard report but" in _refused([s1, plain])
    newer = _shard_report(tmp_path / "newer", 2, version="99.0")
    assert "different mi-assert versions" in _refused([s1, newer])
    # reports of runs without --mi-shard merge when they are disjoint
    x, y = _write(tmp_path / "x", [_rec("t.py::a")]), _write(tmp_path / "y", [_rec("t.py::a")])
    assert _refused([x, y]) == (f"the reports overlap: 1 test(s) in more than one input: t.py::a "
                                f"({x / 'report.json'} and {y / 'report.json'}); merge disjoint "
                                "runs only")
    z = _write(tmp_path / "z", [_rec("u.py::b", passed=False)])
    assert merge_reports([load_input(x), load_input(z)])["totals"]["verdict"] == \
        "1 of 2 claim(s) FAILED"


def test_incomplete_shards_need_allow_incomplete(tmp_path: Path) -> None:
    s1 = _shard_report(tmp_path / "s1", 1)
    cut = _shard_report(tmp_path / "cut", 2, complete=False, interrupted="SIGTERM")
    message = _refused([s1, cut])
    assert message.startswith(f"incomplete input: {cut / 'report.json'} (shard 2/2): stopped "
                              "by SIGTERM; rerun what is missing or stopped, or pass "
                              "--allow-incomplete")
    merged = merge_reports([load_input(s1), load_input(cut)], allow_incomplete=True)
    assert merged["complete"] is False
    assert merged["interrupted"] == "SIGTERM in shard 2/2"
    running = _shard_report(tmp_path / "running", 2, complete=False)
    assert "complete: false (the run was killed or is still running)" in _refused([s1, running])
    assert "shard(s) 2/2 not given" in _refused([s1])


def test_comparisons_must_match(tmp_path: Path) -> None:
    def comparison(baseline: str, status: str) -> dict[str, Any]:
        row = {"key": "k", "series": None, "checkpoint": None, "status": status, "test": "t",
               "claim": "c", "checkpoint_step": None, "checkpoint_order": None}
        return {"baseline": baseline, "tolerances": {}, "rows": [row], "counts": {},
                "warnings": []}

    s1 = _shard_report(tmp_path / "s1", 1, comparison=comparison("main", "missing"))
    s2 = _shard_report(tmp_path / "s2", 2, comparison=comparison("main", "ok"))
    merged = merge_reports([load_input(s1), load_input(s2)])["comparison"]
    assert [r["status"] for r in merged["rows"]] == ["ok"] and merged["counts"]["ok"] == 1
    other = _shard_report(tmp_path / "other", 2, comparison=comparison("old", "ok"))
    assert "the shards were compared with different baseline" in _refused([s1, other])
    bare = _shard_report(tmp_path / "bare", 2)
    assert "has no comparison with a baseline but" in _refused([s1, bare])
