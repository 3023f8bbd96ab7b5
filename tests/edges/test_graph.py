"""EdgeGraph: nodes, edges, order, counts and names that parse back."""

from __future__ import annotations

import pytest

from mi_assert.edges import Edge, EdgeGraph, count_edges
from mi_assert.edges.graph import EMBED, LOGITS, head, mlp
from mi_assert.errors import MiAssertInputError


@pytest.mark.parametrize("n_layers,n_heads,has_mlp,expected", [
    (2, 4, True, 110),     # the random 2-layer model with MLPs
    (2, 4, False, 81),     # planted-induction and the attention-only random model
    (4, 8, True, 1519),    # the CPU benchmark model
    (12, 12, True, 32491),  # GPT-2 small (the MIB circuit track's count)
])
def test_edge_counts(n_layers, n_heads, has_mlp, expected):
    graph = EdgeGraph(n_layers, n_heads, has_mlp)
    assert len(graph) == graph.n_edges == expected == count_edges(n_layers, n_heads, has_mlp)
    assert len(set(graph.edges)) == expected


def test_parallel_attention_and_mlp_drop_the_same_layer_edges():
    graph = EdgeGraph(2, 4, has_mlp=True, parallel_attn_mlp=True)
    assert len(graph) == count_edges(2, 4, True, parallel_attn_mlp=True) == 110 - 2 * 4
    assert Edge.parse("L0H0->mlp1") in graph and Edge.parse("L1H0->mlp1") not in graph


def test_nodes_and_order_of_a_small_graph():
    graph = EdgeGraph(2, 2, has_mlp=True)
    assert [n.name for n in graph.nodes] == ["embed", "L0H0", "L0H1", "mlp0", "L1H0", "L1H1",
                                              "mlp1", "logits"]
    names = [e.name for e in graph.edges]
    assert names[:6] == ["embed->L0H0.q", "embed->L0H0.k", "embed->L0H0.v",
                         "embed->L0H1.q", "embed->L0H1.k", "embed->L0H1.v"]
    assert names[6:9] == ["embed->mlp0", "L0H0->mlp0", "L0H1->mlp0"]
    assert names[9:13] == ["embed->L1H0.q", "L0H0->L1H0.q", "L0H1->L1H0.q", "mlp0->L1H0.q"]
    assert names[-7:] == ["embed->logits", "L0H0->logits", "L0H1->logits", "mlp0->logits",
                          "L1H0->logits", "L1H1->logits", "mlp1->logits"]
    assert graph.edges == EdgeGraph(2, 2, has_mlp=True).edges  # fixed order


def test_every_sender_is_upstream_of_its_receiver():
    graph = EdgeGraph(3, 3, has_mlp=True)
    step = {EMBED: -1, LOGITS: 99}
    for layer in range(3):
        step[mlp(layer)] = 2 * layer + 1
        step.update({head(layer, h): 2 * layer for h in range(3)})
    assert all(step[e.sender] < step[e.receiver] for e in graph.edges)
    # and every upstream pair is an edge (3 inputs per head receiver)
    pairs = sum((3 if r.kind == "head" else 1) for s in graph.senders for r in graph.nodes
                if r.kind != "embed" and step[s] < step[r])
    assert pairs == len(graph)


def test_attention_only_graph_has_no_mlp_nodes():
    graph = EdgeGraph(2, 4, has_mlp=False)
    assert not any(n.kind == "mlp" for n in graph.nodes)
    with pytest.raises(MiAssertInputError, match="attention-only"):
        graph.edge("mlp0->logits")


@pytest.mark.parametrize("name", ["L0H0->L1H0.k", "embed->mlp0", "mlp1->logits", "L1H3->mlp1",
                                  "embed->L0H2.q", "mlp0->L1H1.v"])
def test_names_parse_back(name):
    graph = EdgeGraph(2, 4, has_mlp=True)
    edge = graph.edge(name)
    assert edge.name == name == str(edge) and Edge.parse(edge.name) == edge
    assert graph.edges[graph.index(name)] == edge


def test_all_names_round_trip():
    graph = EdgeGraph(3, 2, has_mlp=True)
    assert [Edge.parse(e.name) for e in graph.edges] == list(graph.edges)


def test_graph_from_a_handle(planted, mlp_model):
    handle, _ = planted
    assert len(EdgeGraph.from_handle(handle)) == 81
    assert len(EdgeGraph.from_handle(mlp_model)) == 110


@pytest.mark.parametrize("name,match", [
    ("L0H0-L1H0.k", "SENDER->RECEIVER"),
    ("L0H0->L1H0", "three inputs"),
    ("L0H0->L1H0.z", "input .z. unknown"),
    ("L0H0->mlp1.q", "only head receivers"),
    ("logits->L1H0.q", "sender 'logits' not understood"),
    ("L0H0->embed", "receiver 'embed' not understood"),
    ("L1H0->L0H1.q", "not upstream"),
    ("L1H0->L1H1.k", "not upstream"),
    ("mlp1->mlp1", "not upstream"),
    ("L5H0->logits", "layers are 0..1"),
    ("L0H7->logits", "heads are 0..3"),
])
def test_bad_edge_names(name, match):
    with pytest.raises(MiAssertInputError, match=match):
        EdgeGraph(2, 4, has_mlp=True).edge(name)


def test_downstream_sender_message_says_what_the_receiver_reads():
    with pytest.raises(MiAssertInputError) as info:
        EdgeGraph(2, 4, has_mlp=True).edge("L1H0->L0H1.q")
    message = str(info.value)
    assert "L1H0 is not upstream of receiver L0H1.q" in message
    assert "reads embed and the heads and MLPs of layers < 0" in message


def test_bad_graph_shape():
    with pytest.raises(MiAssertInputError, match="n_layers"):
        EdgeGraph(0, 4)
