"""On planted-induction@s0 the exact edge sweep finds the planted circuit and nothing else.

Ground truth (mi_assert/zoo/planted.py, seed 0): previous-token head L0H0 (OV copies the token
into the ``prev`` subspace), induction head L1H0 (keys read ``prev``: K-composition; OV writes
the answer read by ``W_U``), positional impostor L0H2 (writes ``junk``, which nothing reads).
Swap-corrupted induction pairs move the earlier copy of the final token, so the difference
reaches the induction head only through the previous-token head's keys: the circuit is
embed -> L0H0.v -> (L0H0 -> L1H0.k) -> (L1H0 -> logits), and each of its three edges alone
restores the whole clean-corrupted gap when patched into the corrupted run.
"""

from __future__ import annotations

import pytest

from mi_assert.edges import edge_sweep


@pytest.fixture(scope="module")
def exact_scores(planted_edges):
    handle, circuit, ps = planted_edges
    return circuit, edge_sweep(handle, ps, metric="logit_diff")


def test_planted_roles_of_seed_0(exact_scores):
    circuit, _ = exact_scores
    assert circuit.heads("previous_token") == [(0, 0)]
    assert circuit.heads("induction") == [(1, 0)]
    assert circuit.heads("positional") == [(0, 2)]


def test_the_circuit_edges_are_the_top_edges(exact_scores):
    _, scores = exact_scores
    top = [e.name for e, _ in scores.top(3)]
    assert set(top) == {"L0H0->L1H0.k", "L1H0->logits", "embed->L0H0.v"}
    norm = scores.normalised()
    for name in top:
        assert float(norm[scores.index(name)]) == pytest.approx(1.0, abs=0.02)
    # every other edge recovers at most a few percent of the gap
    others = [i for i, e in enumerate(scores.edges) if e.name not in top]
    assert float(norm[others].abs().max()) < 0.05


def test_the_positional_impostor_edges_score_about_zero(exact_scores):
    _, scores = exact_scores
    norm = scores.normalised()
    impostor = [i for i, e in enumerate(scores.edges) if "L0H2" in (e.sender.name, e.receiver.name)]
    assert len(impostor) == 3 + 4 * 3 + 1  # embed -> q/k/v, into each L1 head's q/k/v, logits
    assert float(norm[impostor].abs().max()) < 0.01
