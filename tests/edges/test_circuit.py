"""Circuit: an edge set from names or a sweep's top k, and back from its JSON form."""

from __future__ import annotations

import json

import pytest

from mi_assert.edges import Circuit, EdgeGraph, edge_sweep
from mi_assert.errors import MiAssertInputError

GRAPH = EdgeGraph(2, 4, has_mlp=False)


def test_from_names_keeps_graph_order_and_nodes():
    circuit = Circuit.from_names(GRAPH, ["L1H0->logits", "embed->L0H0.v", "L0H0->L1H0.k"])
    assert circuit.names == ["embed->L0H0.v", "L0H0->L1H0.k", "L1H0->logits"]
    assert [n.name for n in circuit.nodes] == ["embed", "L0H0", "L1H0", "logits"]
    assert "L0H0->L1H0.k" in circuit and "L0H0->L1H0.q" not in circuit and len(circuit) == 3


def test_json_round_trip():
    circuit = Circuit.from_names(GRAPH, ["embed->L0H0.v", "L1H0->logits"])
    text = circuit.to_json()
    assert json.loads(text)["graph"] == {"n_layers": 2, "n_heads": 4, "has_mlp": False,
                                         "parallel_attn_mlp": False}
    assert Circuit.from_json(text) == circuit
    assert Circuit.from_json(text, graph=GRAPH) == circuit


def test_from_the_top_of_a_sweep(planted_edges):
    handle, _, ps = planted_edges
    scores = edge_sweep(handle, ps, metric="logit_diff")
    circuit = Circuit.from_scores(scores, 3)
    assert set(circuit.names) == {"embed->L0H0.v", "L0H0->L1H0.k", "L1H0->logits"}
    assert Circuit.from_json(circuit.to_json(), graph=handle) == circuit
    assert circuit.union(Circuit.from_names(handle, ["L0H2->logits"])).names[-2:] == [
        "L0H2->logits", "L1H0->logits"]
    assert circuit.difference(Circuit.from_names(handle, "L1H0->logits")).names == [
        "embed->L0H0.v", "L0H0->L1H0.k"]


@pytest.mark.parametrize("text,match", [
    ("{not json", "does not parse"),
    ('{"format": "other"}', "not a circuit"),
    ('{"format": "mi-assert-circuit/1", "graph": {"n_layers": 2}, "edges": []}', "'graph' must hold"),
    ('{"format": "mi-assert-circuit/1", "graph": {"n_layers": 2, "n_heads": 4, "has_mlp": false, '
     '"parallel_attn_mlp": false}, "edges": ["L9H0->logits"]}', "layers are 0..1"),
])
def test_bad_json(text, match):
    with pytest.raises(MiAssertInputError, match=match):
        Circuit.from_json(text)


def test_graph_mismatch_and_duplicates():
    text = Circuit.from_names(GRAPH, ["L1H0->logits"]).to_json()
    with pytest.raises(MiAssertInputError, match="was saved for graph"):
        Circuit.from_json(text, graph=EdgeGraph(2, 4, has_mlp=True))
    with pytest.raises(MiAssertInputError, match="more than once"):
        Circuit.from_names(GRAPH, ["L1H0->logits", "L1H0->logits"])
    with pytest.raises(MiAssertInputError, match="different graphs"):
        Circuit.from_names(GRAPH, []).union(Circuit.from_names(EdgeGraph(1, 1), []))
