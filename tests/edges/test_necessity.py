"""Partial necessity on planted-induction@s0: knocking the planted circuit out of the model
costs the whole gap, far more than knocking out random same-size edge sets."""

from __future__ import annotations

import pytest

from mi_assert.edges import Circuit, EdgeGraph
from mi_assert.edges.claims import (
    ABLATION,
    assert_circuit_necessary,
    check_circuit_necessary,
    draw_random_circuits,
    knocked_out,
    measure_circuits,
)
from mi_assert.errors import MiAssertInputError
from mi_assert.verdict import ClaimFailed

TRUE = ["embed->L0H0.v", "L0H0->L1H0.k", "L1H0->logits"]
#: the positional impostor's own path: shaped like the circuit, none of its edges
IMPOSTOR = ["embed->L0H2.v", "L0H2->L1H2.k", "L1H2->logits"]


@pytest.fixture(scope="module")
def planted_pairs(planted_edges, one_torch_thread):
    handle, _, ps = planted_edges
    return handle, ps


def test_knocked_out_is_every_other_edge():
    graph = EdgeGraph(2, 4, has_mlp=False)
    rest = knocked_out(Circuit.from_names(graph, TRUE))
    assert len(rest) == graph.n_edges - 3 and not set(rest.names) & set(TRUE)


def test_the_planted_circuit_is_necessary(planted_pairs):
    handle, ps = planted_pairs
    evidence = assert_circuit_necessary(handle, TRUE, ps)
    assert evidence.passed and evidence.settings["ablation"] == ABLATION
    assert evidence.details["circuit_knockout_loss"] == pytest.approx(1.0, abs=0.01)
    # a draw that shares a vital edge with the circuit costs as much: about 1 in 9 of them
    assert evidence.details["draws_missing_the_circuit"] == pytest.approx(0.8917, abs=1e-4)
    assert evidence.details["wins"] >= 85
    assert evidence.figures["circuit"]["kind"] == "circuit"
    assert evidence.figures["random_knockout_loss"]["kind"] == "hist"


def test_an_impostor_and_a_random_circuit_are_not(planted_pairs):
    handle, ps = planted_pairs
    graph = EdgeGraph.from_handle(handle)
    with pytest.raises(ClaimFailed):
        assert_circuit_necessary(handle, IMPOSTOR, ps)
    vital = set(TRUE)
    (random,) = [c for c in draw_random_circuits(graph, 3, 20, seed=7)
                 if not vital & set(c.names)][:1]
    evidence = check_circuit_necessary(handle, random, ps)
    assert not evidence.passed
    assert evidence.details["circuit_knockout_loss"] < 0.05


def test_knockout_loss_is_one_minus_the_rest_faithfulness(planted_pairs):
    handle, ps = planted_pairs
    graph = EdgeGraph.from_handle(handle)
    circuit = Circuit.from_names(graph, TRUE)
    measured = measure_circuits(handle, [knocked_out(circuit)], ps)
    evidence = check_circuit_necessary(handle, circuit, ps, n_random=20)
    assert evidence.details["circuit_knockout_loss"] == pytest.approx(
        1 - measured.faithfulness()[0], abs=1e-4)


@pytest.mark.parametrize("q", [0, 1, -0.2, 1.5, True, "0.9"])
def test_bad_q_is_refused(planted_pairs, q):
    handle, ps = planted_pairs
    with pytest.raises(MiAssertInputError, match="q must be a number strictly between 0 and 1"):
        check_circuit_necessary(handle, TRUE, ps, q=q)


def test_bad_circuits_and_counts_are_refused(planted_pairs):
    handle, ps = planted_pairs
    with pytest.raises(MiAssertInputError, match="no edges"):
        check_circuit_necessary(handle, [], ps)
    with pytest.raises(MiAssertInputError, match="n_random must be an int >= 20"):
        check_circuit_necessary(handle, TRUE, ps, n_random=5)
    with pytest.raises(MiAssertInputError, match="not in this model|not upstream"):
        check_circuit_necessary(handle, ["L1H0->L0H0.k"], ps)
