"""Circuits as graphs: edges ``sender -> receiver input`` and their scores.

``EdgeGraph.from_handle(model)`` lists every edge (embed, heads, MLPs → head q/k/v inputs, MLP
inputs, logits); ``edge_sweep(model, clean, corrupted, metric, method="exact" | "eap" |
"eap_ig")`` scores them (``docs/edges.md``); a :class:`Circuit` is a set of edges, e.g. a
sweep's top k. ``measure_circuits`` runs circuits (only their edges carry the clean signal);
``check_circuit_beats_random`` / ``check_circuit_equivalent`` / ``check_circuit_necessary`` (and
``assert_*``) are claims on them; ``faithfulness_curve`` / ``check_faithfulness_auc`` judge a
whole ranking by its top-k circuits; ``discover_circuit`` finds the smallest faithful top-k
circuit; ``circuit_figure`` / ``circuit_svg`` draw a circuit.
"""

from mi_assert.edges.circuit import Circuit
from mi_assert.edges.claims import (
    CircuitMetrics,
    assert_circuit_beats_random,
    assert_circuit_equivalent,
    assert_circuit_necessary,
    check_circuit_beats_random,
    check_circuit_equivalent,
    check_circuit_necessary,
    draw_random_circuits,
    measure_circuits,
)
from mi_assert.edges.curve import (
    FaithfulnessCurve,
    assert_faithfulness_auc,
    check_faithfulness_auc,
    faithfulness_curve,
)
from mi_assert.edges.discovery import CircuitDiscovery, discover_circuit
from mi_assert.edges.drawing import circuit_figure, circuit_svg
from mi_assert.edges.graph import Edge, EdgeGraph, Node, count_edges
from mi_assert.edges.scores import EdgeScores
from mi_assert.edges.sweep import edge_sweep

__all__ = ["Circuit", "CircuitDiscovery", "CircuitMetrics", "Edge", "EdgeGraph", "EdgeScores",
           "FaithfulnessCurve", "Node", "assert_circuit_beats_random", "assert_circuit_equivalent",
           "assert_circuit_necessary", "assert_faithfulness_auc", "check_circuit_beats_random",
           "check_circuit_equivalent", "check_circuit_necessary", "check_faithfulness_auc",
           "circuit_figure", "circuit_svg", "count_edges", "discover_circuit",
           "draw_random_circuits", "edge_sweep", "faithfulness_curve", "measure_circuits"]
