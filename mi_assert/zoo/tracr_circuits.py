"""The compiler's graph of a Tracr zoo model as an edge :class:`~mi_assert.edges.Circuit`.

Apart from :mod:`mi_assert.zoo.tracr_models` because the zoo registry imports that module to
build the models, and :mod:`mi_assert.edges` imports the registry (through
:mod:`mi_assert.loading`).
"""

from __future__ import annotations

from mi_assert.edges.circuit import Circuit
from mi_assert.edges.graph import EdgeGraph
from mi_assert.zoo.tracr_models import program_of


def ground_truth_edges(spec: str, positional: bool = True) -> Circuit:
    """The edges of zoo model ``spec`` (``tracr-induction``, ``tracr-sort@s0``) that the
    compiler's graph says carry a RASP variable from its writer to its reader
    (:mod:`mi_assert.zoo.tracr_models`); ``positional=False`` drops those that carry only
    ``indices``, which aligned clean/corrupted prompts never change."""
    prog = program_of(spec)
    graph = EdgeGraph(int(prog.config["n_layers"]), int(prog.config["n_heads"]), has_mlp=True)
    return Circuit.from_names(graph, prog.ground_truth_edge_names(positional))


__all__ = ["ground_truth_edges"]
