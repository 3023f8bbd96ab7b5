"""A circuit as a set of edges of one model's graph, with a JSON form for files and reports."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from mi_assert.edges.graph import Edge, EdgeGraph, Node
from mi_assert.edges.scores import EdgeScores
from mi_assert.errors import MiAssertInputError

#: ``format`` field of a circuit's JSON form
CIRCUIT_FORMAT = "mi-assert-circuit/1"
_GRAPH_KEYS = ("n_layers", "n_heads", "has_mlp", "parallel_attn_mlp")


@dataclass(frozen=True)
class Circuit:
    """Edges of ``graph`` (each once, kept in graph order)."""

    graph: EdgeGraph
    edges: tuple[Edge, ...]

    def __post_init__(self) -> None:
        checked = [self.graph.edge(e) for e in self.edges]
        if len(set(checked)) != len(checked):
            twice = sorted({e.name for e in checked if checked.count(e) > 1})
            raise MiAssertInputError(f"circuit lists edge(s) {', '.join(twice)} more than once; "
                                     "list each edge once")
        object.__setattr__(self, "edges", tuple(sorted(checked, key=self.graph.index)))

    # ----- construction ----------------------------------------------------------------
    @classmethod
    def from_names(cls, graph: EdgeGraph | Any, names: Iterable[Edge | str]) -> Circuit:
        """A circuit of the named edges (``"L0H0->L1H0.k"``, ...). ``graph``: an
        :class:`EdgeGraph`, or any model :meth:`EdgeGraph.from_handle` accepts."""
        if isinstance(names, (str, Edge)):
            names = [names]
        g = graph if isinstance(graph, EdgeGraph) else EdgeGraph.from_handle(graph)
        return cls(g, tuple(g.edge(n) for n in names))

    @classmethod
    def from_scores(cls, scores: EdgeScores, k: int, absolute: bool = True) -> Circuit:
        """The ``k`` top-scoring edges of a sweep (:meth:`EdgeScores.top`)."""
        return cls(scores.graph, tuple(edge for edge, _ in scores.top(k, absolute=absolute)))

    # ----- contents --------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.edges)

    def __iter__(self) -> Iterator[Edge]:
        return iter(self.edges)

    def __contains__(self, edge: object) -> bool:
        if isinstance(edge, str):
            edge = self.graph.edge(edge)
        return edge in set(self.edges)

    @property
    def names(self) -> list[str]:
        return [e.name for e in self.edges]

    @property
    def nodes(self) -> tuple[Node, ...]:
        """Every node an edge of the circuit touches, in forward order."""
        touched = {n for e in self.edges for n in (e.sender, e.receiver)}
        return tuple(n for n in self.graph.nodes if n in touched)

    def union(self, other: Circuit) -> Circuit:
        self._check_same_graph(other)
        return Circuit(self.graph, tuple(dict.fromkeys(self.edges + other.edges)))

    def difference(self, other: Circuit) -> Circuit:
        self._check_same_graph(other)
        drop = set(other.edges)
        return Circuit(self.graph, tuple(e for e in self.edges if e not in drop))

    def _check_same_graph(self, other: Circuit) -> None:
        if other.graph != self.graph:
            raise MiAssertInputError(f"circuits of different graphs ({self.graph.describe()} vs "
                                     f"{other.graph.describe()}) cannot be combined")

    # ----- JSON ------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        graph = self.graph.describe()
        return {"format": CIRCUIT_FORMAT, "graph": {k: graph[k] for k in _GRAPH_KEYS},
                "edges": self.names}

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_dict(cls, data: Any, graph: EdgeGraph | Any | None = None) -> Circuit:
        """Read :meth:`to_dict`'s form; with ``graph`` (or a model) the stored graph shape must
        match it."""
        if not isinstance(data, dict) or data.get("format") != CIRCUIT_FORMAT:
            found = data.get("format") if isinstance(data, dict) else type(data).__name__
            raise MiAssertInputError(f"not a circuit: expected an object with format "
                                     f"{CIRCUIT_FORMAT!r}, found {found!r}")
        stored = data.get("graph")
        if not isinstance(stored, dict) or any(k not in stored for k in _GRAPH_KEYS):
            raise MiAssertInputError(f"circuit JSON: 'graph' must hold {', '.join(_GRAPH_KEYS)}")
        edges = data.get("edges")
        if not isinstance(edges, list) or not all(isinstance(e, str) for e in edges):
            raise MiAssertInputError("circuit JSON: 'edges' must be a list of edge names")
        own = EdgeGraph(**{k: stored[k] for k in _GRAPH_KEYS})
        if graph is not None:
            want = graph if isinstance(graph, EdgeGraph) else EdgeGraph.from_handle(graph)
            if want != own:
                raise MiAssertInputError(f"circuit was saved for graph {own.describe()}, but the "
                                         f"model's graph is {want.describe()}")
        return cls.from_names(own, edges)

    @classmethod
    def from_json(cls, text: str, graph: EdgeGraph | Any | None = None) -> Circuit:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise MiAssertInputError(f"circuit JSON does not parse: {exc}") from exc
        return cls.from_dict(data, graph)

    def __repr__(self) -> str:
        shown = ", ".join(self.names[:4]) + (", ..." if len(self) > 4 else "")
        return f"<Circuit {len(self)} edges: {shown}>"
