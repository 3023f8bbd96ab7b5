"""Faithfulness, completeness and minimality on edge circuits (mi_assert.edges.node_claims).

planted-induction@s0's circuit is embed -> L0H0.v, L0H0 -> L1H0.k (the previous-token head
into the induction head's keys), L1H0 -> logits. The impostor has the same shape with the
positional head L0H2 in place of L0H0. Under corrupted ablation a swap pair's clean and
corrupted prompts share the query token and the copied token, so the induction head's q and v
edges (``embed->L1H0.q``, ``embed->L1H0.v``) carry nothing; under mean / resample ablation the
circuit needs them too (docs/edges.md, "Ablation kinds").
"""

from __future__ import annotations

import numpy as np
import pytest

import mi_assert
from mi_assert import ClaimFailed
from mi_assert.causal.circuits import (
    assert_circuit_completeness,
    assert_circuit_faithfulness,
    assert_circuit_minimality,
    check_circuit_completeness,
    check_circuit_faithfulness,
    check_circuit_minimality,
)
from mi_assert.edges import Circuit, EdgeGraph, measure_circuits
from mi_assert.errors import MiAssertInputError
from tests.evidence_contract import check_evidence

TRUE = ["embed->L0H0.v", "L0H0->L1H0.k", "L1H0->logits"]
IMPOSTOR = ["embed->L0H2.v", "L0H2->L1H0.k", "L1H0->logits"]
#: the circuit under mean / resample ablation: the induction head's query and copied token too
FIVE = TRUE + ["embed->L1H0.q", "embed->L1H0.v"]
#: carries nothing under corrupted ablation (the query token is the same in both prompts)
USELESS = "embed->L1H0.q"


@pytest.fixture(scope="module")
def pairs(planted_edges, one_torch_thread):
    handle, _, ps = planted_edges
    return handle, ps


def _circuit(handle, names):
    return Circuit.from_names(handle, names)


# ----- faithfulness ---------------------------------------------------------------------------
def test_faithfulness_passes_on_the_true_circuit_and_fails_on_the_impostor(pairs):
    handle, ps = pairs
    ev = assert_circuit_faithfulness(handle, ps, _circuit(handle, TRUE), min_faithfulness=0.9)
    check_evidence(ev)
    assert ev.n == 16 and ev.estimate == pytest.approx(1.0, abs=0.02)
    assert ev.settings["ablation"].startswith("corrupted: ")  # the default for edge circuits
    assert "corrupted ablation" in ev.claim and ev.settings["level"] == "edges"
    assert ev.settings["circuit"] == TRUE and ev.figures["circuit"]["kind"] == "circuit"
    # the same number the edge family computes: one code path for circuit runs
    measured = measure_circuits(handle, [TRUE], ps)
    assert ev.estimate == pytest.approx(float(measured.faithfulness()[0]), abs=1e-9)
    with pytest.raises(ClaimFailed) as info:
        assert_circuit_faithfulness(handle, ps, _circuit(handle, IMPOSTOR))
    check_evidence(info.value.evidence)
    assert abs(info.value.evidence.estimate) < 0.01


def test_edge_names_and_circuits_are_the_same_claim(pairs):
    handle, ps = pairs
    by_names = check_circuit_faithfulness(handle, ps, TRUE)
    by_circuit = mi_assert.check_circuit_faithfulness(handle, ps, _circuit(handle, TRUE))
    assert by_names.estimate == by_circuit.estimate and by_names.claim == by_circuit.claim


@pytest.mark.parametrize("ablation", ["mean", "resample"])
def test_the_ablation_kind_decides_which_circuit_is_faithful(pairs, ablation):
    handle, ps = pairs
    with pytest.raises(ClaimFailed) as info:  # the 3-edge path restores < 0.1 here
        assert_circuit_faithfulness(handle, ps, TRUE, ablation=ablation)
    failed = info.value.evidence
    assert failed.estimate < 0.2 and f"{ablation} ablation" in failed.claim
    assert failed.settings["ablation"].startswith(f"{ablation}: ")
    ev = assert_circuit_faithfulness(handle, ps, FIVE, ablation=ablation, min_faithfulness=0.9)
    check_evidence(ev)
    if ablation == "resample":
        assert ev.settings["ablation_seed"] == "each row's claim seed"


def test_faithfulness_seeds_draw_fresh_pairs_from_a_generator(planted_edges, one_torch_thread):
    handle, _, _ = planted_edges
    ev = check_circuit_faithfulness(handle, "induction_pairs", TRUE, seeds=[0, 1],
                                    prompt_kwargs={"n_prompts": 8}, min_faithfulness=0.9)
    check_evidence(ev)
    assert ev.passed and len(ev.per_seed) == 2 and ev.settings["prompts"] == "induction_pairs"


# ----- completeness ---------------------------------------------------------------------------
def test_completeness_passes_on_the_true_circuit_and_fails_on_the_impostor(pairs):
    handle, ps = pairs
    ev = assert_circuit_completeness(handle, ps, _circuit(handle, TRUE), n_subsets=3)
    check_evidence(ev)
    upper, lower = ev.family
    labels = [r.label for r in upper.per_seed]
    assert labels == [r.label for r in lower.per_seed]
    # K = {} and K = C always, then random subsets of the circuit's edges
    assert "K={}" in labels[0] and "K={L0H0->L1H0.k,L1H0->logits,embed->L0H0.v}" in labels[1]
    assert len(labels) == 5 and "corrupted ablation" in ev.claim
    assert ev.settings["ablation"].startswith("corrupted: ")
    for a, b in zip(upper.per_seed, lower.per_seed, strict=True):
        assert a.estimate == pytest.approx(-b.estimate)
    # K = {}: F(C) - F(M) over the gap is faithfulness - 1
    assert upper.per_seed[0].estimate == pytest.approx(
        check_circuit_faithfulness(handle, ps, TRUE).estimate - 1, abs=1e-9)
    with pytest.raises(ClaimFailed) as info:  # K = {}: the impostor restores nothing
        assert_circuit_completeness(handle, ps, IMPOSTOR, n_subsets=1)
    check_evidence(info.value.evidence)
    assert info.value.evidence.estimate == pytest.approx(1.0, abs=0.02)


# ----- minimality -----------------------------------------------------------------------------
def test_minimality_passes_on_the_true_circuit_and_fails_with_a_useless_edge(pairs):
    handle, ps = pairs
    ev = assert_circuit_minimality(handle, ps, _circuit(handle, TRUE), n_subsets=2)
    check_evidence(ev)
    # one member per edge, each tested on the other half of the prompt pairs: 8 of 16
    assert len(ev.family) == 3 and ev.n == 8 and all(m.n == 8 for m in ev.family)
    assert [m.claim.split(" matters")[0] for m in ev.family] == TRUE
    assert "corrupted ablation" in ev.claim and ev.settings["tested"].startswith("3 of 3")
    with pytest.raises(ClaimFailed, match="is not needed") as info:
        assert_circuit_minimality(handle, ps, TRUE + [USELESS], n_subsets=2)
    failed = info.value.evidence
    check_evidence(failed)
    assert failed.deciding.startswith(USELESS) and len(failed.family) == 4
    assert sum(m.passed for m in failed.family) == 3
    impostor = check_circuit_minimality(handle, ps, IMPOSTOR, n_subsets=1)
    assert not impostor.passed


def test_minimality_caps_the_tested_edges_with_a_seeded_sample(pairs):
    handle, ps = pairs
    ev = check_circuit_minimality(handle, ps, TRUE + [USELESS], n_subsets=1, max_members=2)
    assert len(ev.family) == 2
    assert ev.settings["tested"].startswith("2 of 4 circuit edges (max_members=2; a uniform "
                                            "sample")
    untested = ev.details["untested"]
    tested = [m.claim.split(" matters")[0] for m in ev.family]
    assert sorted(untested + tested) == sorted(TRUE + [USELESS])
    again = check_circuit_minimality(handle, ps, TRUE + [USELESS], n_subsets=1, max_members=2)
    assert again.details["untested"] == untested  # seeded
    with pytest.raises(MiAssertInputError, match="max_members must be an int >= 1"):
        check_circuit_minimality(handle, ps, TRUE, max_members=0)


# ----- node circuits are unchanged ------------------------------------------------------------
def test_node_circuits_keep_their_node_claims(planted_edges, one_torch_thread):
    handle, gt, ps = planted_edges
    nodes = gt.heads("previous_token") + gt.heads("induction")
    ev = check_circuit_faithfulness(handle, ps, nodes)
    assert ev.settings["ablation"] == "mean" and "ablation)" not in ev.claim
    assert "F(C)/F(M) >" in ev.claim and "level" not in ev.settings


# ----- bad input ------------------------------------------------------------------------------
@pytest.mark.parametrize("check", [check_circuit_faithfulness, check_circuit_completeness,
                                   check_circuit_minimality])
def test_refused_circuits(pairs, check):
    handle, ps = pairs
    graph = EdgeGraph.from_handle(handle)
    with pytest.raises(MiAssertInputError, match="the circuit has no edges"):
        check(handle, ps, Circuit(graph, ()))
    with pytest.raises(MiAssertInputError, match="is not connected to the logits"):
        check(handle, ps, ["embed->L0H0.v", "L0H0->L1H0.k"])
    with pytest.raises(MiAssertInputError, match="heads are 0..3"):
        check(handle, ps, ["L0H9->logits"])
    with pytest.raises(MiAssertInputError, match="attention-only"):
        check(handle, ps, ["mlp0->logits"])
    with pytest.raises(MiAssertInputError, match="mixes edges .* and nodes"):
        check(handle, ps, ["L1H0", "L1H0->logits"])


def test_refused_options(pairs):
    handle, ps = pairs
    with pytest.raises(MiAssertInputError, match="ablation='zero' knocks out nodes"):
        check_circuit_faithfulness(handle, ps, TRUE, ablation="zero")
    with pytest.raises(MiAssertInputError, match="allowed: 'corrupted', 'mean', 'resample'"):
        check_circuit_faithfulness(handle, ps, TRUE, ablation="noise")
    with pytest.raises(MiAssertInputError, match="drop reference="):
        check_circuit_completeness(handle, ps, TRUE, reference="corrupted")
    with pytest.raises(MiAssertInputError, match="drop nodes="):
        check_circuit_minimality(handle, ps, TRUE, nodes="heads")
    with pytest.raises(MiAssertInputError, match="clean/corrupted prompt pairs"):
        check_circuit_faithfulness(handle, ps.clean, TRUE, mi_assert.logit_diff(ps.correct, ps.wrong))
    with pytest.raises(MiAssertInputError, match=r"4 distinct prompt pairs.*min_prompts=8"):
        check_circuit_faithfulness(handle, _first(ps, 4), TRUE)
    with pytest.raises(MiAssertInputError, match="test half has 4 distinct prompts"):
        check_circuit_minimality(handle, _first(ps, 8), TRUE)


def _first(ps, n):
    from mi_assert.prompts import PromptSet

    return PromptSet(ps.clean[:n], ps.corrupted[:n], ps.correct[:n], ps.wrong[:n])


def test_a_backend_the_edge_engine_cannot_hook_is_refused():
    handle = mi_assert.load_model("tiny-gpt2", backend="bridge", device="cpu")
    tokens = np.arange(1, 5)[None].repeat(8, axis=0)
    with pytest.raises(MiAssertInputError, match=r"Supported: transformer_lens"):
        check_circuit_faithfulness(handle, tokens, ["L0H0->logits"])
