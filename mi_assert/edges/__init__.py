"""Circuits as graphs: edges ``sender -> receiver input`` and their scores.

``EdgeGraph.from_handle(model)`` lists every edge (embed, heads, MLPs → head q/k/v inputs, MLP
inputs, logits); ``edge_sweep(model, clean, corrupted, metric, method="exact" | "eap")`` scores
them (``docs/edges.md``); a :class:`Circuit` is a set of edges, e.g. a sweep's top k.
"""

from mi_assert.edges.circuit import Circuit
from mi_assert.edges.graph import Edge, EdgeGraph, Node, count_edges
from mi_assert.edges.scores import EdgeScores
from mi_assert.edges.sweep import edge_sweep

__all__ = ["Circuit", "Edge", "EdgeGraph", "EdgeScores", "Node", "count_edges", "edge_sweep"]
