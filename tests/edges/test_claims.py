"""Edge-circuit claims: circuit runs, beats-random and equivalence on planted-induction@s0.

The planted circuit (tests/edges/test_planted_ground_truth.py) is embed -> L0H0.v ->
(L0H0 -> L1H0.k) -> (L1H0 -> logits). The wrong circuit has the same shape with the
positional impostor L0H2 in place of the previous-token head: its edges carry nothing the
induction head reads.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import mi_assert
from mi_assert.edges import Circuit, EdgeGraph, edge_sweep
from mi_assert.edges.claims import (
    ABLATION,
    assert_circuit_beats_random,
    assert_circuit_equivalent,
    check_circuit_beats_random,
    check_circuit_equivalent,
    draw_random_circuits,
    measure_circuits,
)
from mi_assert.edges.readout import MetricReadout
from mi_assert.edges.senders import record_run
from mi_assert.errors import MiAssertInputError
from tests.edges.conftest import random_model

TRUE = ["embed->L0H0.v", "L0H0->L1H0.k", "L1H0->logits"]
WRONG = ["embed->L0H2.v", "L0H2->L1H0.k", "L1H0->logits"]


@pytest.fixture(scope="module")
def planted_pairs(planted_edges, one_torch_thread):
    handle, _, ps = planted_edges
    return handle, ps


# ----- circuit runs -----------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["mlp", "attn_only", "parallel"])
def test_every_edge_is_the_clean_run_and_no_edge_the_corrupted_run(kind, random_pairs):
    model = random_model(attn_only=kind == "attn_only", parallel=kind == "parallel")
    clean, corrupted, metric = random_pairs
    graph = EdgeGraph.from_handle(model)
    m = measure_circuits(model, [Circuit(graph, graph.edges), Circuit(graph, ())], clean,
                         corrupted, metric)
    np.testing.assert_allclose(m.per_prompt[0], m.clean, atol=1e-5)
    np.testing.assert_array_equal(m.per_prompt[1], m.corrupted)  # bit for bit


def test_all_but_some_logit_edges_matches_the_recorded_runs(mlp_model, random_pairs):
    clean, corrupted, metric = random_pairs
    graph = EdgeGraph.from_handle(mlp_model)
    left_out = {"mlp1->logits", "L1H2->logits"}
    circuit = Circuit(graph, tuple(e for e in graph.edges if e.name not in left_out))
    got = measure_circuits(mlp_model, [circuit], clean, corrupted, metric).per_prompt[0]
    with torch.no_grad():
        runs = [record_run(mlp_model, graph, t) for t in (clean, corrupted)]
        final = runs[0].final_resid.clone()
        for name in left_out:
            i = graph.sender_index(graph.edge(name).sender)
            final -= runs[0].outputs[i] - runs[1].outputs[i]
        want = MetricReadout(mlp_model, metric, clean.shape[0])(final)[0].numpy()
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_embed_to_logits_alone_equals_its_exact_edge_score(mlp_model, random_pairs):
    clean, corrupted, metric = random_pairs
    m = measure_circuits(mlp_model, [["embed->logits"]], clean, corrupted, metric)
    exact = edge_sweep(mlp_model, clean, corrupted, metric, edges=["embed->logits"])
    np.testing.assert_allclose(m.per_prompt[0] - m.corrupted, exact.per_prompt[0].numpy(),
                               atol=1e-5)


def test_stacking_and_chunking_do_not_change_values(mlp_model, random_pairs):
    clean, corrupted, metric = random_pairs
    circuits = draw_random_circuits(EdgeGraph.from_handle(mlp_model), 30, 6, seed=1)
    stacked = measure_circuits(mlp_model, circuits, clean, corrupted, metric).per_prompt
    one_by_one = measure_circuits(mlp_model, circuits, clean, corrupted, metric,
                                  max_batch=clean.shape[0]).per_prompt
    np.testing.assert_allclose(stacked, one_by_one, atol=1e-5)
    assert np.ptp(stacked) > 0  # the circuits differ, so the check has teeth


def test_random_draws_are_seeded_and_of_the_circuit_size(planted_pairs):
    graph = EdgeGraph.from_handle(planted_pairs[0])
    first = draw_random_circuits(graph, 3, 5, seed=7)
    assert [c.names for c in first] == [c.names for c in draw_random_circuits(graph, 3, 5, seed=7)]
    assert all(len(c) == 3 for c in first)


def test_faithfulness_of_the_true_and_the_wrong_circuit(planted_pairs):
    handle, ps = planted_pairs
    faithfulness = measure_circuits(handle, [TRUE, WRONG], ps).faithfulness()
    assert faithfulness[0] == pytest.approx(1.0, abs=0.02)
    assert abs(faithfulness[1]) < 1e-3


# ----- the claims, both ways --------------------------------------------------------------
@pytest.fixture(scope="module")
def beats(planted_pairs):
    handle, ps = planted_pairs
    return {"true": assert_circuit_beats_random(handle, TRUE, ps),
            "wrong": check_circuit_beats_random(handle, WRONG, ps)}


@pytest.fixture(scope="module")
def equivalent(planted_pairs):
    handle, ps = planted_pairs
    return {"true": assert_circuit_equivalent(handle, TRUE, ps, epsilon=0.1),
            "wrong": check_circuit_equivalent(handle, WRONG, ps, epsilon=0.1)}


def test_the_true_circuit_beats_random_circuits(beats):
    ev = beats["true"]
    assert ev.passed and ev.details["wins"] == 100
    assert ev.bound == pytest.approx(0.05 ** (1 / 100), abs=1e-3)  # exact binomial bound
    assert ev.settings["ablation"] == ABLATION


def test_the_wrong_circuit_does_not_beat_random_circuits(beats, planted_pairs):
    assert not beats["wrong"].passed and beats["wrong"].details["wins"] == 0
    handle, ps = planted_pairs
    with pytest.raises(mi_assert.ClaimFailed):
        assert_circuit_beats_random(handle, WRONG, ps)


def test_the_true_circuit_is_equivalent_to_the_model(equivalent):
    ev = equivalent["true"]
    assert ev.passed
    low, high = (m.bound for m in ev.family)
    assert -0.1 < low < high < 0.1
    assert ev.settings["ablation"] == ABLATION


def test_the_wrong_circuit_is_not_equivalent(equivalent, planted_pairs):
    assert not equivalent["wrong"].passed
    assert equivalent["wrong"].estimate == pytest.approx(-1.0, abs=0.05)
    handle, ps = planted_pairs
    with pytest.raises(mi_assert.ClaimFailed):
        assert_circuit_equivalent(handle, WRONG, ps)


# ----- bad input --------------------------------------------------------------------------
@pytest.mark.parametrize("q", [0, 1, -0.5, 1.5, True, "0.9"])
def test_q_outside_the_open_unit_interval_is_refused(planted_pairs, q):
    with pytest.raises(MiAssertInputError, match="q must be a number strictly between 0 and 1"):
        check_circuit_beats_random(*planted_pairs[:1], TRUE, planted_pairs[1], q=q)


@pytest.mark.parametrize("n_random", [19, 0, 20.5])
def test_too_few_random_circuits_are_refused(planted_pairs, n_random):
    with pytest.raises(MiAssertInputError, match="n_random must be an int >= 20"):
        check_circuit_beats_random(planted_pairs[0], TRUE, planted_pairs[1], n_random=n_random)


@pytest.mark.parametrize("epsilon", [0, -0.1, float("nan")])
def test_non_positive_epsilon_is_refused(planted_pairs, epsilon):
    with pytest.raises(MiAssertInputError, match="epsilon must be a finite number > 0"):
        check_circuit_equivalent(planted_pairs[0], TRUE, planted_pairs[1], epsilon=epsilon)


@pytest.mark.parametrize("check", [check_circuit_beats_random, check_circuit_equivalent])
@pytest.mark.parametrize(("circuit", "message"), [
    ([], "the circuit has no edges"),
    (["L2H0->logits"], "layers are 0..1"),
    (["L0H7->logits"], "heads are 0..3"),
    (["embed->mlp0"], "attention-only"),
    (["L1H0->L0H0.q"], "not upstream"),
    (["embed->L0H0.v", "L0H0->L1H0.k"], "not connected to the logits"),
])
def test_bad_circuits_are_refused(planted_pairs, check, circuit, message):
    with pytest.raises(MiAssertInputError, match=message):
        check(planted_pairs[0], circuit, planted_pairs[1])


def test_a_circuit_of_another_graph_is_refused(planted_pairs, mlp_model):
    other = Circuit.from_names(mlp_model, ["L1H0->logits"])
    with pytest.raises(MiAssertInputError, match="but the model's graph is"):
        check_circuit_equivalent(planted_pairs[0], other, planted_pairs[1])
