"""Find an edge circuit: the smallest top-k set of a sweep's ranking that is faithful enough.

``discover_circuit(model, clean, corrupted, metric)`` ranks every edge with
:func:`~mi_assert.edges.edge_sweep` (``method="eap_ig"`` by default), then walks ``k = 1, 2,
...`` up the ranking. Each top-k set is reduced to its *connected part*: the edges that lie on
a path of the set's edges from ``embed`` to the logits. The other edges restore nothing in a
circuit run (a sender no circuit path from ``embed`` reaches keeps its corrupted output, and
a receiver with no circuit path on to the logits changes nothing there), and the circuit
claims refuse a circuit with no edge into the logits, so the connected part is the circuit.
The answer is the first ``k`` whose connected part reaches ``target_faithfulness`` on these
(fit) prompts, faithfulness being
``(F(C) - F(ablated)) / (F(clean) - F(ablated))`` (:func:`~mi_assert.edges.measure_circuits`,
the edges outside the circuit ablated as ``ablation`` says; the sweep that ranks the edges
patches corrupted values whatever ``ablation`` is).

The search is linear, so the ``k`` found is the smallest one even where faithfulness is not
monotone in ``k``. Top-k sets with the same connected part are measured once, a set with no
connected part (nothing reaches the logits) has faithfulness 0 and is not run, and the
distinct sets are run in stacked chunks that stop at the first chunk reaching the target.

State the discovered circuit as claims on *other* (held-out) prompts: on the fit prompts it
reaches the target by construction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from mi_assert.edges.ablation import AblationKind, check_ablation
from mi_assert.edges.circuit import Circuit
from mi_assert.edges.claims import measure_circuits
from mi_assert.edges.graph import EMBED, LOGITS, Edge, EdgeGraph, Node
from mi_assert.edges.scores import EdgeScores
from mi_assert.edges.sweep import METHODS, edge_sweep
from mi_assert.errors import MiAssertInputError
from mi_assert.loading import resolve_model

#: distinct top-k circuits measured per stacked call, doubling from the first to the last
CHUNK_SIZES = (8, 16, 32, 64)


@dataclass(frozen=True)
class CircuitDiscovery:
    """The result of :func:`discover_circuit`.

    ``circuit``: the connected part of the ranking's top ``k`` edges; ``faithfulness``: its
    faithfulness on the discovery prompts; ``reached``: whether that is >= ``target`` (when no
    ``k`` up to ``max_edges`` reaches it, the circuit is the most faithful one tried);
    ``scores``: the sweep that ranked the edges; ``ks_tried`` / ``faithfulness_tried``: every
    ``k`` looked at, in order, with its top-k circuit's faithfulness (0 for sets with no
    connected part, which are not run).
    """

    circuit: Circuit
    k: int
    faithfulness: float
    reached: bool
    target: float
    scores: EdgeScores
    ks_tried: tuple[int, ...]
    faithfulness_tried: tuple[float, ...]

    @property
    def names(self) -> list[str]:
        return self.circuit.names

    def describe(self) -> dict[str, Any]:
        """Plain data for logs and reports."""
        return {"edges": self.names, "n_edges": len(self.circuit), "k": self.k,
                "faithfulness": round(self.faithfulness, 4), "reached": self.reached,
                "target": self.target, "method": self.scores.method,
                "graph_edges": self.circuit.graph.n_edges, "n_ks_tried": len(self.ks_tried)}


def connected_part(circuit: Circuit) -> Circuit:
    """The edges of ``circuit`` on a path of its edges from ``embed`` to the logits."""
    graph = circuit.graph
    forward = sorted(circuit.edges, key=lambda e: graph.sender_index(e.sender))
    reached: set[Node] = {EMBED}
    for edge in forward:  # an edge into a sender comes before every edge out of it
        if edge.sender in reached:
            reached.add(edge.receiver)
    live: set[Node] = {LOGITS}
    for edge in reversed(forward):  # every edge out of a receiver comes after it
        if edge.receiver in live:
            live.add(edge.sender)
    return Circuit(graph, tuple(e for e in circuit.edges
                                if e.sender in reached and e.receiver in live))


def _check_target(value: Any) -> float:
    ok = (not isinstance(value, bool) and isinstance(value, (int, float, np.floating))
          and 0 < float(value) <= 1)
    if not ok:
        raise MiAssertInputError(f"target_faithfulness must be a number in (0, 1] (the share of "
                                 f"the clean-corrupted gap the circuit restores); got {value!r}")
    return float(value)


def _check_max_edges(value: Any, graph: EdgeGraph) -> int:
    if value is None:
        return graph.n_edges
    if (isinstance(value, bool) or not isinstance(value, (int, np.integer))
            or not 1 <= value <= graph.n_edges):
        raise MiAssertInputError(f"max_edges must be None or an int in 1..{graph.n_edges} (the "
                                 f"model's edges); got {value!r}")
    return int(value)


def discover_circuit(
    model: Any,
    clean: Any,
    corrupted: Any = None,
    metric: Any = "logit_diff",
    *,
    method: Literal["exact", "eap", "eap_ig"] = "eap_ig",
    target_faithfulness: float = 0.8,
    max_edges: int | None = None,
    steps: int | None = None,
    max_batch: int | None = None,
    ablation: AblationKind = "corrupted",
    ablation_seed: int = 0,
) -> CircuitDiscovery:
    """The smallest top-k circuit of an edge ranking whose faithfulness on these prompts reaches
    ``target_faithfulness`` (module docstring).

    Args:
        model, clean, corrupted, metric: as :func:`~mi_assert.edges.edge_sweep` takes them.
        method: how the edges are ranked (``"exact"``, ``"eap"`` or ``"eap_ig"``), by
            ``|score|``.
        target_faithfulness: in (0, 1].
        max_edges: the largest ``k`` tried (default: every edge).
        steps: integration steps of ``eap_ig`` (default 5, :data:`~.sweep.EAP_IG_STEPS`); only
            ``eap_ig`` takes it.
        max_batch: prompt rows per stacked forward, as :func:`~.measure_circuits` takes it.
        ablation, ablation_seed: what the edges outside a top-k circuit carry when its
            faithfulness is measured, as :func:`~.measure_circuits` takes them (the ranking
            sweep is unchanged).
    """
    check_ablation(ablation)
    target = _check_target(target_faithfulness)
    if method not in METHODS:
        raise MiAssertInputError(f"method={method!r}: allowed {', '.join(repr(m) for m in METHODS)}")
    handle = resolve_model(model)
    graph = EdgeGraph.from_handle(handle)
    k_max = _check_max_edges(max_edges, graph)
    scores = edge_sweep(handle, clean, corrupted, metric, method, steps=steps,
                        max_batch=max_batch)
    ranking: list[Edge] = [edge for edge, _ in scores.top(len(scores))]

    parts: list[Circuit] = []  # the connected part of each top-k set looked at, k = 1, 2, ...
    measured: dict[frozenset[Edge], float] = {frozenset(): 0.0}
    found: int | None = None
    start, chunk = 0, 0
    while start < k_max and found is None:
        size = CHUNK_SIZES[min(chunk, len(CHUNK_SIZES) - 1)]
        todo: list[Circuit] = []
        stop = start
        while stop < k_max and len(todo) < size:
            parts.append(connected_part(Circuit(graph, tuple(ranking[:stop + 1]))))
            key = frozenset(parts[stop].edges)
            if key not in measured and all(key != frozenset(c.edges) for c in todo):
                todo.append(parts[stop])
            stop += 1
        if todo:
            values = measure_circuits(handle, todo, clean, corrupted, metric,
                                      max_batch=max_batch, ablation=ablation,
                                      ablation_seed=ablation_seed).faithfulness()
            measured.update({frozenset(c.edges): float(v) for c, v in zip(todo, values, strict=True)})
        found = next((k for k in range(start + 1, stop + 1)
                      if measured[frozenset(parts[k - 1].edges)] >= target), None)
        start, chunk = stop, chunk + 1

    last = found if found is not None else start
    ks = tuple(range(1, last + 1))
    tried = tuple(measured[frozenset(parts[k - 1].edges)] for k in ks)
    k = found if found is not None else ks[int(np.argmax(tried))]
    return CircuitDiscovery(circuit=parts[k - 1], k=k, faithfulness=tried[k - 1],
                             reached=found is not None, target=target, scores=scores,
                             ks_tried=ks, faithfulness_tried=tried)


__all__ = ["CircuitDiscovery", "connected_part", "discover_circuit"]
