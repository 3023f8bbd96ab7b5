"""``benchmarks/edges_vs_autocircuit.py``: its edge-name map covers mi-assert's graph one to one,
and, where auto-circuit is installed (the benchmark venv, ``scripts/setup_autocircuit_venv.sh``),
both libraries give the same exact edge scores on a tiny model."""

from __future__ import annotations

import copy

import pytest
import torch

from benchmarks.edges_vs_autocircuit import autocircuit_exact, build, ours_name
from mi_assert.edges import EdgeGraph, edge_sweep

TINY = dict(n_layers=2, d_model=32, n_heads=4, d_vocab=50, batch=3, seq=6)


@pytest.mark.parametrize("theirs,ours", [
    ("Resid Start->A0.1.Q", "embed->L0H1.q"),
    ("A0.3->A1.0.K", "L0H3->L1H0.k"),
    ("MLP 0->A1.2.V", "mlp0->L1H2.v"),
    ("A1.2->MLP 1", "L1H2->mlp1"),
    ("MLP 11->Resid End", "mlp11->logits"),
    ("A10.11->Resid End", "L10H11->logits"),
])
def test_edge_names_map_to_ours(theirs, ours):
    assert ours_name(theirs) == ours


def test_the_map_is_one_to_one_on_a_graph():
    graph = EdgeGraph(3, 4, True, False)

    def theirs(name: str) -> str:
        def node(n: str) -> str:
            if n in ("embed", "logits"):
                return {"embed": "Resid Start", "logits": "Resid End"}[n]
            if n.startswith("mlp"):
                return f"MLP {n[3:]}"
            head, _, inp = n.partition(".")
            layer, h = head[1:].split("H")
            return f"A{layer}.{h}" + (f".{inp.upper()}" if inp else "")

        s, r = name.split("->")
        return f"{node(s)}->{node(r)}"

    names = [e.name for e in graph.edges]
    assert [ours_name(theirs(n)) for n in names] == names


def test_both_libraries_give_the_same_scores():
    pytest.importorskip("auto_circuit", reason="auto-circuit lives in the benchmark venv "
                        "(scripts/setup_autocircuit_venv.sh), not in the project's")
    model, clean, corrupted, metric = build(TINY, torch.device("cpu"))
    ours_model = copy.deepcopy(model)
    scores, run = autocircuit_exact(model, clean, corrupted, metric, torch.device("cpu"))
    run()
    sweep = edge_sweep(ours_model, clean, corrupted, metric)
    ref = torch.stack([scores[e.name] for e in sweep.edges])
    assert float(ref.abs().max()) > 1e-2
    assert float((sweep.per_prompt - ref).abs().max()) <= 1e-5
