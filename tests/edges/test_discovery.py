"""``discover_circuit``: the smallest faithful top-k circuit of an edge ranking.

On planted-induction@s0 (16 swap pairs of seed 0) every method's ranking reaches faithfulness
1.00 at the planted circuit: ``eap_ig`` and ``exact`` rank its three edges first (k = 3);
``eap`` misses the saturated K-composition edge and needs k = 5 (``docs/edges.md``).
"""

from __future__ import annotations

import pytest

import mi_assert
from mi_assert.edges import Circuit, EdgeGraph, discover_circuit, measure_circuits
from mi_assert.edges.discovery import CircuitDiscovery, connected_part
from mi_assert.errors import MiAssertInputError

TRUE = ["embed->L0H0.v", "L0H0->L1H0.k", "L1H0->logits"]


@pytest.fixture(scope="module")
def planted_pairs(planted_edges, one_torch_thread):
    handle, _, ps = planted_edges
    return handle, ps


@pytest.mark.parametrize("method", ["eap_ig", "exact"])
@pytest.mark.parametrize("target", [0.5, 0.8, 1.0])
def test_finds_exactly_the_planted_circuit(planted_pairs, method, target):
    handle, ps = planted_pairs
    found = discover_circuit(handle, ps, method=method, target_faithfulness=target)
    assert isinstance(found, CircuitDiscovery)
    assert sorted(found.names) == sorted(TRUE), found.describe()
    assert found.k == 3 and found.reached and found.ks_tried == (1, 2, 3)
    assert found.faithfulness == pytest.approx(1.0, abs=0.01)
    assert found.faithfulness_tried[:2] == (0.0, 0.0)  # no top-1/top-2 path reaches the logits
    assert found.scores.method == method


def test_the_faithfulness_is_the_circuits_own(planted_pairs):
    handle, ps = planted_pairs
    found = discover_circuit(handle, ps)
    own = measure_circuits(handle, [found.circuit], ps).faithfulness()[0]
    assert found.faithfulness == pytest.approx(float(own), abs=1e-9)


def test_exported_lazily_from_the_package():
    assert mi_assert.discover_circuit is discover_circuit
    assert mi_assert.CircuitDiscovery is CircuitDiscovery


def test_connected_part_drops_edges_off_every_embed_to_logits_path():
    graph = EdgeGraph(n_layers=2, n_heads=4, has_mlp=False)
    circuit = Circuit.from_names(graph, [
        *TRUE,
        "L0H1->L1H2.q",   # L0H1 is not reached from embed
        "embed->L0H3.v",  # L0H3 leads nowhere
        "embed->L1H1.k",  # L1H1 does not reach the logits
    ])
    assert sorted(connected_part(circuit).names) == sorted(TRUE)
    assert connected_part(Circuit.from_names(graph, ["L0H0->L1H0.k", "L1H0->logits"])).names == []
    assert connected_part(Circuit.from_names(graph, ["embed->logits"])).names == ["embed->logits"]


def test_max_edges_caps_the_search_and_reports_not_reached(planted_pairs):
    handle, ps = planted_pairs
    found = discover_circuit(handle, ps, method="exact", max_edges=2)
    assert not found.reached and found.ks_tried == (1, 2)
    assert found.faithfulness == 0.0 and len(found.circuit) == 0


@pytest.mark.parametrize("target", [0, -0.1, 1.01, 2, True, "0.8", float("nan")])
def test_target_outside_the_unit_interval_is_refused(planted_pairs, target):
    handle, ps = planted_pairs
    with pytest.raises(MiAssertInputError, match="target_faithfulness"):
        discover_circuit(handle, ps, target_faithfulness=target)


def test_unknown_method_is_refused(planted_pairs):
    handle, ps = planted_pairs
    with pytest.raises(MiAssertInputError, match="method='ig'.*'exact', 'eap', 'eap_ig'"):
        discover_circuit(handle, ps, method="ig")  # type: ignore[arg-type]


@pytest.mark.parametrize("max_edges", [0, 82, 2.5, True])
def test_bad_max_edges_is_refused(planted_pairs, max_edges):
    handle, ps = planted_pairs
    with pytest.raises(MiAssertInputError, match="max_edges"):
        discover_circuit(handle, ps, max_edges=max_edges)


def test_steps_are_for_eap_ig_only(planted_pairs):
    handle, ps = planted_pairs
    with pytest.raises(MiAssertInputError, match="steps"):
        discover_circuit(handle, ps, method="exact", steps=5)
