"""Plain-module parts of reporting: comparison rules, tolerances, baselines, schema, figures,
HTML, atomic writes, progress, device assignment, checkpoint listing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mi_assert.errors import MiAssertInputError
from mi_assert.report import baseline as bl
from mi_assert.report.atomic import atomic_write_text, ensure_writable_dir
from mi_assert.report.compare import compare, format_table, judge, parse_tolerances
from mi_assert.report.figures import figures_to_plain, render_png
from mi_assert.report.html import render_html
from mi_assert.report.json_report import build_report
from mi_assert.report.progress import Progress, progress, set_sink
from mi_assert.report.schema import make_record, strip_param, strip_volatile
from mi_assert.scaleout import remote_value, worker_device
from mi_assert.zoo.checkpoint_list import checkpoints_of, expand_checkpoints
from tests.report.helpers import assert_self_contained, page_figures


def _record(claim: str = "c", estimate: float = 0.8, low: float = 0.7, high: float = 0.9,
            alternative: str = "greater", spec: str = "m", ckpt: str = "h1", nodeid: str = "t.py::test",
            checkpoint: dict | None = None, metric: str = "induction score") -> dict:
    ev = {"claim": claim, "metric": metric, "estimate": estimate, "low": low, "high": high,
          "bound": low, "n": 10, "threshold": 0.5, "alpha": 0.05, "alternative": alternative,
          "passed": True, "verdict": "PASS", "per_seed": [], "model": {"spec": spec, "checkpoint": ckpt}}
    return make_record(ev, {"nodeid": nodeid, "checkpoint": checkpoint})


@pytest.mark.parametrize(("base", "low", "high", "alternative", "tol", "status"), [
    (0.8, 0.70, 0.90, "greater", 0.0, "ok"),        # interval covers the baseline
    (0.8, 0.60, 0.75, "greater", 0.0, "REGRESSED"),  # whole interval below
    (0.8, 0.60, 0.75, "greater", 0.1, "ok"),        # ... but within tolerance
    (0.8, 0.85, 0.95, "greater", 0.0, "improved"),
    (0.2, 0.25, 0.30, "less", 0.0, "REGRESSED"),    # mirrored for "less" claims
    (0.2, 0.25, 0.30, "less", 0.1, "ok"),
    (0.2, 0.05, 0.10, "less", 0.0, "improved"),
])
def test_judge_is_statistical_and_mirrored(base, low, high, alternative, tol, status) -> None:
    assert judge(base, low, high, alternative, tol) == status


def test_compare_rows_new_missing_and_flags() -> None:
    base = [bl.slim(_record("kept")), bl.slim(_record("gone")), bl.slim(_record("moved", spec="A"))]
    run = [_record("kept", 0.5, 0.45, 0.55, ckpt="h2"), _record("fresh"),
           _record("moved", spec="B")]
    comp = compare(base, run, parse_tolerances(["induction_score:0.1"]), name="main")
    status = {r["claim"]: (r["status"], r["note"]) for r in comp["rows"]}
    assert status == {"kept": ("REGRESSED", "weights changed"), "gone": ("missing", ""),
                      "fresh": ("new", ""), "moved": ("ok", "OTHER MODEL")}
    assert comp["counts"]["REGRESSED"] == 1
    lines = format_table(comp)
    assert lines[1].startswith("REGRESSED  t.py::test  kept") and "-0.300" in lines[1]
    assert any(line.startswith("WARNING: baseline 'main' was recorded on model 'A'") for line in lines)


def test_parse_tolerances() -> None:
    assert parse_tolerances(["recovery:0.05", "Induction-Score:0.1", "0.02"]) == {
        "recovery": 0.05, "induction_score": 0.1, "*": 0.02}
    for bad in ("recovery:x", "recovery:-1"):
        with pytest.raises(MiAssertInputError, match="tolerance"):
            parse_tolerances([bad])


def test_baseline_roundtrip_and_guard(tmp_path: Path) -> None:
    recs = [_record("a", spec="zoo@s0", ckpt="h1"), _record("b", spec="/some/path/ck", ckpt="h2")]
    files = bl.save_baseline(tmp_path, "v1", recs)
    assert [f.name for f in files] == [f"ck-{bl.model_slug('/some/path/ck')[-8:]}.json", "zoo@s0.json"]
    loaded = bl.load_baseline(tmp_path, "v1")
    assert sorted(r["claim"] for r in loaded) == ["a", "b"]
    with pytest.raises(MiAssertInputError, match="already exists"):
        bl.check_can_save(tmp_path, "v1", overwrite=False)
    bl.check_can_save(tmp_path, "v1", overwrite=True)
    (tmp_path / "v1" / "zoo@s0.json").write_text(json.dumps({"kind": "mi-assert-baseline",
                                                             "schema_version": 2,
                                                             "records": [{"key": "k"}]}))
    with pytest.raises(MiAssertInputError, match="record 0 lacks field"):
        bl.load_baseline(tmp_path, "v1")
    (tmp_path / "v1" / "zoo@s0.json").write_text(json.dumps({"kind": "mi-assert-baseline",
                                                             "schema_version": 1, "records": []}))
    with pytest.raises(MiAssertInputError, match=r"schema_version 1 is not supported.*reads "
                       r"version 2\).*older mi-assert.*--mi-baseline-overwrite"):
        bl.load_baseline(tmp_path, "v1")


def test_strip_param_and_volatile() -> None:
    assert strip_param("t.py::f[ck@s0:step10-seed0]", "ck@s0:step10") == "t.py::f[seed0]"
    assert strip_param("t.py::f[step-10]", "step-10") == "t.py::f"
    assert strip_param("t.py::f[seed0-step10]", "step10") == "t.py::f[seed0]"
    assert strip_param("t.py::f[seed0]", None) == "t.py::f[seed0]"
    assert strip_volatile({"a": 1, "created": 2, "x": [{"worker": "gw0", "b": 3}]}) == {"a": 1, "x": [{"b": 3}]}


def test_figures_serialise_and_draw() -> None:
    import numpy as np
    import torch

    plain = figures_to_plain({
        "h": {"kind": "heatmap", "data": torch.arange(6.0).reshape(2, 3) - 2, "xlabel": "head"},
        "p": {"kind": "pattern", "data": np.eye(5)[None].repeat(2, 0)},
        "d": {"kind": "hist", "data": [[0.1, 0.2, float("nan")], [0.3, 0.4]], "threshold": 0.2},
        "l": {"kind": "line", "data": {"x": [1, 2], "y": [0.1, 0.5], "low": [0, 0.4], "high": [0.2, 0.6]}},
        "bad": {"kind": "scatter", "data": [1]},
        "big": {"kind": "heatmap", "data": np.zeros((600, 600))},
    })
    json.dumps(plain, allow_nan=False)
    assert plain["h"]["data"] == [[-2.0, -1.0, 0.0], [1.0, 2.0, 3.0]]
    assert "unknown figure kind 'scatter'" in plain["bad"]["error"]
    assert plain["big"]["data"] is None and "too large" in plain["big"]["error"]
    import base64

    for name in "hpdl":
        assert base64.b64decode(render_png(plain[name], name))[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="heatmap data must be 2-d"):
        render_png({"kind": "heatmap", "data": [[[1.0]]]})


def test_html_is_self_contained_and_survives_bad_figures() -> None:
    rec = _record("L1H2 <is> induction", checkpoint={"label": "step10", "series": "s", "step": 10,
                                                     "order": 0, "param_id": "step10"})
    rec["evidence"]["per_seed"] = [{"seed": 0, "estimate": 0.8, "low": 0.7, "high": 0.9, "passed": True}]
    rec["figures"] = figures_to_plain({"bad": {"kind": "heatmap", "data": [[[1.0]]]},
                                       "ok": {"kind": "heatmap", "data": [[1.0, 2.0]]}})
    page = render_html(build_report([rec]))
    assert "L1H2 &lt;is&gt; induction" in page
    figs = page_figures(page)
    assert sorted(f["kind"] for f in figs.values()) == ["error", "forest", "heatmap", "trajectory"]
    assert [f["error"] for f in figs.values() if f["kind"] == "error"] == [
        "heatmap data must be 1-d or 2-d, got 3-d"]
    assert_self_contained(page)


def test_atomic_write_and_dir_checks(tmp_path: Path) -> None:
    target = atomic_write_text(tmp_path / "r.json", "new")
    assert target.read_text() == "new" and [p.name for p in tmp_path.iterdir()] == ["r.json"]
    (tmp_path / "file").write_text("x")
    with pytest.raises(MiAssertInputError, match="not a directory"):
        ensure_writable_dir(tmp_path / "file")
    with pytest.raises(MiAssertInputError, match="cannot be written"):
        ensure_writable_dir(tmp_path / "file" / "sub")


def test_progress_lines_go_to_the_sink() -> None:
    lines: list[str] = []
    previous = set_sink(lines.append)
    try:
        assert list(progress(range(3), "sweep", min_interval=0.0)) == [0, 1, 2]
        bar = Progress(None, "open-ended", min_interval=0.0)
        bar.update(note="x")
    finally:
        set_sink(previous)
    assert lines[-2].startswith("[mi-assert] sweep [####################] 3/3")
    assert lines[-1].startswith("[mi-assert] open-ended 1 done") and lines[-1].endswith("x")


def test_worker_device_and_remote() -> None:
    assert worker_device("cuda", "gw3", 2) == "cuda:1"
    assert worker_device("cuda", "gw0", 4) == "cuda:0"
    assert worker_device("cuda", None, 2) == "cuda"
    assert worker_device("cpu", "gw1", 2) == "cpu"
    assert worker_device("cuda:1", "gw0", 2) == "cuda:1"
    assert worker_device("cuda", "gw1", 0) == "cuda"
    assert remote_value("ndif") is True and remote_value("local") == "local"
    assert remote_value("https://h.example") == "https://h.example" and remote_value(None) is None


def test_checkpoint_listing_and_patterns(tmp_path: Path) -> None:
    zoo = tmp_path / "zoo"
    for seed, steps in ((0, (100, 20, 300)), (1, (20,))):
        folder = zoo / "attn-only-2l-induction" / f"s{seed}"
        folder.mkdir(parents=True)
        for step in steps:
            (folder / f"step{step}.safetensors").write_bytes(b"")
    assert checkpoints_of("attn-only-2l-induction@s0", zoo) == [
        f"attn-only-2l-induction@s0:step{k}" for k in (20, 100, 300)]
    refs = expand_checkpoints("attn-only-2l-induction@s*:step*", tmp_path, zoo)
    assert [(r.series, r.step, r.order) for r in refs] == [
        ("attn-only-2l-induction@s0", 20, 0), ("attn-only-2l-induction@s0", 100, 1),
        ("attn-only-2l-induction@s0", 300, 2), ("attn-only-2l-induction@s1", 20, 3)]
    for step in (5, 40):
        (tmp_path / "runs" / f"ckpt-{step}").mkdir(parents=True)
        (tmp_path / "runs" / f"ckpt-{step}" / "config.json").write_text("{}")
    local = expand_checkpoints(["runs/ckpt-*"], tmp_path, zoo)
    assert [(r.label, r.step, r.param_id) for r in local] == [("ckpt-5", 5, "ckpt-5"), ("ckpt-40", 40, "ckpt-40")]
    with pytest.raises(MiAssertInputError, match="saved checkpoints: attn-only-2l-induction@s0"):
        expand_checkpoints("attn-only-2l-induction@s0:step7*", tmp_path, zoo)
    with pytest.raises(MiAssertInputError, match="no folder with a config.json matches 'nope/\\*'"):
        expand_checkpoints("nope/*", tmp_path, zoo)


def test_a_circuit_drawn_on_several_cards_is_stored_once() -> None:
    circuit = {"kind": "circuit", "title": "c", "nodes": [
        {"id": "embed", "label": "embed", "layer": -1, "x": 0.0, "y": 0.5, "importance": 1.0, "in_circuit": True},
        {"id": "logits", "label": "logits", "layer": 1, "x": 1.0, "y": 0.5, "importance": 1.0, "in_circuit": True}],
        "edges": [{"sender": "embed", "receiver": "logits", "input": "logits", "score": 1.0, "in_circuit": True}]}
    records = []
    for name in ("beats random", "equivalent"):
        rec = _record(name, nodeid=f"t.py::test_{name.replace(' ', '_')}")
        rec["figures"] = figures_to_plain({"circuit": circuit})
        records.append(rec)
    page = render_html(build_report(records))
    start = page.index('<script type="application/json" id="mi-data">')
    data = json.loads(page[page.index(">", start) + 1:page.index("</script>", start)].replace("<\\/", "</"))
    assert len(data["svgs"]) == 1 and page.count('class="circuit" data-svg=') == 2
    assert "<svg" in next(iter(data["svgs"].values()))
