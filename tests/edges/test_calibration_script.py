"""scripts/edges_calibration.py in miniature: two draws, the table and the docs section."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "edges_calibration.py"


@pytest.fixture(scope="module")
def calibration():
    spec = importlib.util.spec_from_file_location("edges_calibration", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it loads
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


def test_two_draws_pass_the_planted_circuit_and_fail_the_null(calibration, one_torch_thread):
    tallies, seconds = calibration.calibrate(2, n_models=1, n_random=40, n_prompts=8)
    assert tallies["beats-random: planted"].passes == 2
    nulls = [tallies[f"beats-random: {kind}"] for kind in calibration.KINDS[1:]]
    assert sum(t.runs for t in nulls) == 2 and sum(t.passes for t in nulls) == 0
    text = calibration.section(tallies, seconds, "cmd", 2, 1, 8)
    start, end = calibration.markers(["beats-random"])
    assert text.startswith(start) and text.endswith(end)
    assert "| beats-random: planted | 2/2 = 100.0%" in text
    with pytest.raises(SystemExit, match="allowed beats-random, necessary"):
        calibration.calibrate(1, claims=["minimal"])


def test_the_docs_blocks_are_replaced_in_place(calibration, tmp_path):
    doc = tmp_path / "edges.md"
    doc.write_text("# Edges\n\ntext\n")
    blocks = {claims: calibration.markers([claims]) for claims in ("beats-random", "necessary")}
    for claims, body in (("beats-random", "first"), ("necessary", "other"),
                         ("beats-random", "second")):
        start, end = blocks[claims]
        calibration.write_docs(f"{start}\n{body}\n{end}", doc)
    text = doc.read_text()
    assert text.count("## Calibration") == 1 and "first" not in text
    assert text.index("second") < text.index("other")


def test_the_null_circuit_reaches_the_logits(calibration, planted):
    from mi_assert.edges import EdgeGraph

    handle, _ = planted
    graph = EdgeGraph.from_handle(handle)
    for seed in range(20):
        circuit = calibration.null_circuit(graph, seed)
        assert len(circuit) == 3 and any(e.receiver.kind == "logits" for e in circuit)
    assert calibration.planted_circuit(handle) == ["embed->L0H0.v", "L0H0->L1H0.k",
                                                   "L1H0->logits"]
