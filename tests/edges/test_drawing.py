"""Circuit figures and their SVG: the planted induction circuit drawn on planted-induction@s0."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from mi_assert.edges import Circuit, EdgeGraph, edge_sweep
from mi_assert.edges.claims import check_circuit_beats_random, check_circuit_equivalent
from mi_assert.edges.curve import check_faithfulness_auc
from mi_assert.edges.drawing import INPUT_COLOURS, circuit_figure, circuit_svg
from mi_assert.errors import MiAssertInputError

TRUE = ["embed->L0H0.v", "L0H0->L1H0.k", "L1H0->logits"]
SVG = "{http://www.w3.org/2000/svg}"
NODE_KEYS = {"id", "label", "layer", "x", "y", "importance", "in_circuit"}
EDGE_KEYS = {"sender", "receiver", "input", "score", "in_circuit"}


@pytest.fixture(scope="module")
def planted_scores(planted_edges, one_torch_thread):
    handle, _, ps = planted_edges
    return handle, ps, edge_sweep(handle, ps, metric="logit_diff")


@pytest.fixture(scope="module")
def figure(planted_scores):
    handle, _, scores = planted_scores
    return circuit_figure(EdgeGraph.from_handle(handle), TRUE, scores)


def _edge(figure, sender, receiver, inp):
    (edge,) = [e for e in figure["edges"] if (e["sender"], e["receiver"], e["input"]) ==
               (sender, receiver, inp)]
    return edge


def test_the_figure_has_exactly_the_contract_and_is_json(figure):
    assert set(figure) == {"kind", "title", "nodes", "edges"}
    assert figure["kind"] == "circuit" and isinstance(figure["title"], str)
    assert json.loads(json.dumps(figure)) == figure
    assert all(set(n) == NODE_KEYS for n in figure["nodes"])
    assert all(set(e) == EDGE_KEYS for e in figure["edges"])
    assert len(figure["nodes"]) == 10 and len(figure["edges"]) == 81
    for n in figure["nodes"]:
        assert 0 <= n["x"] <= 1 and 0 <= n["y"] <= 1 and 0 <= n["importance"] <= 1
        assert isinstance(n["layer"], int)
    assert {e["input"] for e in figure["edges"]} == {"q", "k", "v", "logits"}  # attention only


def test_the_true_circuit_is_marked_with_its_inputs_and_scores(figure, planted_scores):
    _, _, scores = planted_scores
    marked = {(e["sender"], e["receiver"], e["input"]) for e in figure["edges"] if e["in_circuit"]}
    assert marked == {("embed", "L0H0", "v"), ("L0H0", "L1H0", "k"), ("L1H0", "logits", "logits")}
    k_edge = _edge(figure, "L0H0", "L1H0", "k")
    assert k_edge["score"] == pytest.approx(scores.score("L0H0->L1H0.k"))
    assert _edge(figure, "L0H2", "L1H0", "k")["in_circuit"] is False
    on = {n["id"] for n in figure["nodes"] if n["in_circuit"]}
    assert on == {"embed", "L0H0", "L1H0", "logits"}
    importance = {n["id"]: n["importance"] for n in figure["nodes"]}
    assert max(importance, key=importance.get) in on and importance["L0H2"] < 0.01


def test_layers_run_left_to_right(figure):
    nodes = {n["id"]: n for n in figure["nodes"]}
    assert nodes["embed"]["x"] == 0 and nodes["logits"]["x"] == 1
    assert nodes["embed"]["layer"] == -1 and nodes["logits"]["layer"] == 2
    assert nodes["embed"]["x"] < nodes["L0H0"]["x"] < nodes["L1H0"]["x"] < nodes["logits"]["x"]
    assert len({nodes[f"L0H{h}"]["x"] for h in range(4)}) == 1
    assert [nodes[f"L1H{h}"]["y"] for h in range(4)] == sorted(nodes[f"L1H{h}"]["y"]
                                                               for h in range(4))


def test_mlp_columns_sit_between_their_heads_and_the_next_layer():
    figure = circuit_figure(EdgeGraph(2, 4), ["L0H1->mlp0", "mlp0->logits"])
    x = {n["id"]: n["x"] for n in figure["nodes"]}
    assert x["embed"] < x["L0H1"] < x["mlp0"] < x["L1H0"] < x["mlp1"] < x["logits"]
    assert {e["input"] for e in figure["edges"] if e["in_circuit"]} == {"mlp", "logits"}
    assert all(e["score"] is None for e in figure["edges"])


def test_the_svg_parses_and_marks_the_circuit(figure):
    svg = circuit_svg(figure)
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    assert "<script" not in svg.lower() and "href" not in svg and "url(" not in svg
    paths = root.findall(f".//{SVG}path[@data-edge]")
    assert len(paths) == 81
    k_edge = root.find(f".//{SVG}path[@data-edge='L0H0->L1H0.k']")
    assert k_edge is not None and k_edge.get("stroke") == INPUT_COLOURS["k"]
    assert float(k_edge.get("stroke-opacity")) > 0.5
    assert "in circuit" in k_edge.find(f"{SVG}title").text
    impostor = root.find(f".//{SVG}path[@data-edge='L0H2->L1H0.k']")
    assert float(impostor.get("stroke-opacity")) < 0.5
    # circuit edges are drawn last, so they lie on top
    names = [p.get("data-edge") for p in paths]
    assert set(names[-3:]) == set(TRUE)
    nodes = root.findall(f".//{SVG}g[@data-node]")
    assert len(nodes) == 10 and all(g.find(f"{SVG}title") is not None for g in nodes)
    legend = root.find(f".//{SVG}g[@class='legend']")
    assert {t.text for t in legend.iter(f"{SVG}text")} >= {"q", "k", "v", "logits"}


def test_the_svg_escapes_text(figure):
    hostile = {**figure, "title": '<script>alert("x")</script> & co',
               "nodes": [{**n, "label": "<b>&\"'"} if n["id"] == "L1H0" else n
                         for n in figure["nodes"]]}
    svg = circuit_svg(hostile)
    root = ET.fromstring(svg)
    assert "<script" not in svg and "<b>" not in svg
    assert root.find(f"{SVG}title").text == '<script>alert("x")</script> & co'
    labels = [t.text for t in root.iter(f"{SVG}text")]
    assert "<b>&\"'" in labels


def test_bad_figures_and_inputs_are_refused(figure):
    with pytest.raises(MiAssertInputError, match="kind 'circuit'"):
        circuit_svg({"kind": "line"})
    with pytest.raises(MiAssertInputError, match="lacks"):
        circuit_svg({**figure, "nodes": [{"id": "embed"}]})
    with pytest.raises(MiAssertInputError, match="not a node id"):
        circuit_svg({**figure, "nodes": figure["nodes"][:1]})
    with pytest.raises(MiAssertInputError, match="finite"):
        circuit_svg({**figure, "edges": [{**figure["edges"][0], "score": float("nan")}]})
    graph = EdgeGraph(2, 4, has_mlp=False)
    with pytest.raises(MiAssertInputError, match="max_edges"):
        circuit_figure(graph, TRUE, max_edges=0)
    with pytest.raises(MiAssertInputError, match="not in this model|attention-only"):
        circuit_figure(graph, ["embed->mlp0"])
    with pytest.raises(MiAssertInputError, match="graph"):
        circuit_figure(EdgeGraph(3, 4), Circuit.from_names(graph, TRUE))


def test_large_graphs_draw_the_circuit_and_the_top_other_edges():
    graph = EdgeGraph(12, 12)
    figure = circuit_figure(graph, ["embed->L0H0.v", "L0H0->logits"])
    assert len(figure["nodes"]) == 12 * 13 + 2
    assert [e["in_circuit"] for e in figure["edges"]] == [True, True]  # no scores: circuit only
    ET.fromstring(circuit_svg(figure))


def test_circuit_json_and_svg_helpers(planted_scores):
    handle, _, scores = planted_scores
    circuit = Circuit.from_scores(scores, 3)
    assert set(circuit.names) == set(TRUE)
    figure = circuit_figure(circuit.graph, circuit, scores)
    assert json.loads(json.dumps(figure)) == figure
    ET.fromstring(circuit_svg(figure))


def test_the_edge_claims_attach_the_circuit_figure(planted_scores):
    handle, ps, scores = planted_scores
    for evidence in (check_circuit_beats_random(handle, TRUE, ps, n_random=20),
                     check_circuit_equivalent(handle, TRUE, ps),
                     check_faithfulness_auc(handle, scores, ps, min_auc=0.5,
                                            n_random_orderings=2)):
        fig = evidence.figures["circuit"]
        assert fig["kind"] == "circuit"
        marked = {(e["sender"], e["receiver"], e["input"]) for e in fig["edges"]
                  if e["in_circuit"]}
        assert ("L0H0", "L1H0", "k") in marked and ("L1H0", "logits", "logits") in marked
        json.dumps(fig)
