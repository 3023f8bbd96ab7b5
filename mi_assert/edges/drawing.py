"""Drawing a circuit: a JSON-able figure spec of the graph, and a self-contained SVG of it.

:func:`circuit_figure` lays the graph out in columns, left to right in forward order
(``embed``; per layer its heads, then its MLP; ``logits``), with networkx's
``multipartite_layout``, and returns plain data::

    {"kind": "circuit", "title": str,
     "nodes": [{"id", "label", "layer", "x", "y", "importance", "in_circuit"}],
     "edges": [{"sender", "receiver", "input", "score", "in_circuit"}]}

``x`` and ``y`` lie in [0, 1] (``x`` = 0 at ``embed``, 1 at ``logits``; ``y`` grows downwards,
head 0 on top); ``layer`` is -1 for ``embed`` and ``n_layers`` for ``logits``; ``input`` is
``"q"``, ``"k"``, ``"v"``, ``"mlp"`` or ``"logits"``; ``score`` is the edge's sweep score, or
``None`` without scores (or for an edge the sweep did not score). A node's ``importance`` in
[0, 1] is the total ``|score|`` of the drawn edges at it over the largest such total (without
scores: its number of circuit edges over the largest such number).

:func:`circuit_svg` draws such a spec as one inline ``<svg>`` element, without scripts or
external references.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from html import escape
from typing import Any

import networkx as nx

from mi_assert.edges.circuit import Circuit
from mi_assert.edges.graph import Edge, EdgeGraph, Node
from mi_assert.edges.scores import EdgeScores
from mi_assert.errors import MiAssertInputError

FIGURE_KIND = "circuit"
#: the ``input`` of an edge in a figure, by receiver: a head's q/k/v, an MLP, the logits
EDGE_INPUTS: tuple[str, ...] = ("q", "k", "v", "mlp", "logits")
#: stroke colour per edge input (colour-blind-safe palette)
INPUT_COLOURS: dict[str, str] = {"q": "#0072b2", "k": "#d55e00", "v": "#009e73",
                                 "mlp": "#cc79a7", "logits": "#e69f00"}
#: graphs with more edges draw the circuit's edges and the highest-scoring others only
MAX_DRAWN_EDGES = 300
_NODE_KEYS = ("id", "label", "layer", "x", "y", "importance", "in_circuit")
_EDGE_KEYS = ("sender", "receiver", "input", "score", "in_circuit")


def _column(graph: EdgeGraph, node: Node) -> int:
    """Forward-order column: embed 0, then per layer its heads and (with MLPs) its MLP."""
    per_layer = 2 if graph.has_mlp else 1
    if node.kind == "embed":
        return 0
    if node.kind == "logits":
        return 1 + per_layer * graph.n_layers
    assert node.layer is not None
    return 1 + per_layer * node.layer + (1 if node.kind == "mlp" else 0)


def _layer(graph: EdgeGraph, node: Node) -> int:
    if node.kind == "embed":
        return -1
    if node.kind == "logits":
        return graph.n_layers
    assert node.layer is not None
    return node.layer


def edge_input(edge: Edge) -> str:
    """``"q"``, ``"k"``, ``"v"`` (head receivers), ``"mlp"`` or ``"logits"``."""
    if edge.input is not None:
        return edge.input
    return "logits" if edge.receiver.kind == "logits" else "mlp"


def _as_graph(graph: EdgeGraph | Any) -> EdgeGraph:
    return graph if isinstance(graph, EdgeGraph) else EdgeGraph.from_handle(graph)


def _as_circuit(graph: EdgeGraph, circuit: Circuit | Iterable[Edge | str]) -> Circuit:
    if isinstance(circuit, Circuit):
        if circuit.graph != graph:
            raise MiAssertInputError(f"the circuit is a circuit of graph {circuit.graph.describe()}"
                                     f", but the graph to draw is {graph.describe()}")
        return circuit
    return Circuit.from_names(graph, circuit)


def _check_max_edges(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise MiAssertInputError(f"max_edges must be an int >= 1 (edges drawn); got {value!r}")
    return value


def _drawn_edges(graph: EdgeGraph, circuit: Circuit, scores: EdgeScores | None,
                 max_edges: int) -> list[Edge]:
    """Every edge when the graph has at most ``max_edges``; else the circuit's edges and the
    highest-``|score|`` others up to ``max_edges`` in all (none without scores)."""
    if graph.n_edges <= max_edges:
        return list(graph.edges)
    keep = set(circuit.edges)
    if scores is not None:
        room = max(0, max_edges - len(keep))
        others = [e for e, _ in scores.top(len(scores)) if e not in keep]
        keep.update(others[:room])
    return [e for e in graph.edges if e in keep]


def _layout(graph: EdgeGraph) -> dict[Node, tuple[float, float]]:
    """Node positions in [0, 1]²: columns left to right, a column's nodes top to bottom in
    forward order (networkx's ``multipartite_layout``, rescaled)."""
    g = nx.DiGraph()
    columns: dict[int, list[str]] = {}
    for node in graph.nodes:
        g.add_node(node.name)
        columns.setdefault(_column(graph, node), []).append(node.name)
    raw = nx.multipartite_layout(g, subset_key=columns, align="vertical")
    xs = [float(p[0]) for p in raw.values()]
    ys = [float(p[1]) for p in raw.values()]

    def rescale(v: float, lo: float, hi: float) -> float:
        return 0.5 if hi - lo < 1e-12 else min(1.0, max(0.0, (v - lo) / (hi - lo)))

    return {node: (rescale(float(raw[node.name][0]), min(xs), max(xs)),
                   rescale(float(raw[node.name][1]), min(ys), max(ys))) for node in graph.nodes}


def circuit_figure(graph: EdgeGraph | Any, circuit: Circuit | Iterable[Edge | str],
                   scores: EdgeScores | None = None, *, title: str | None = None,
                   max_edges: int = MAX_DRAWN_EDGES) -> dict[str, Any]:
    """A ``"circuit"`` figure spec of ``graph`` with ``circuit`` marked (module docstring).

    Args:
        graph: an :class:`EdgeGraph`, or any model :meth:`EdgeGraph.from_handle` accepts.
        circuit: a :class:`Circuit` of ``graph`` or edge names (may be empty).
        scores: an edge sweep of the same graph: edge scores, node sizes.
        title: the figure's title (default: the circuit's size and the scores' method).
        max_edges: graphs with more edges draw only the circuit's edges and, with scores, the
            highest-``|score|`` other edges, ``max_edges`` in all.
    """
    g = _as_graph(graph)
    claimed = _as_circuit(g, circuit)
    limit = _check_max_edges(max_edges)
    if scores is not None:
        if not isinstance(scores, EdgeScores):
            raise MiAssertInputError(f"scores must be EdgeScores (from edge_sweep) or None; got "
                                     f"{type(scores).__name__}")
        if scores.graph != g:
            raise MiAssertInputError(f"the scores are for graph {scores.graph.describe()}, but "
                                     f"the graph to draw is {g.describe()}")
    if title is not None and not isinstance(title, str):
        raise MiAssertInputError(f"title must be a string or None; got {type(title).__name__}")
    scored = {} if scores is None else dict(zip(scores.edges, scores.values.tolist(), strict=True))
    in_circuit = set(claimed.edges)
    drawn = _drawn_edges(g, claimed, scores, limit)
    weight: dict[Node, float] = dict.fromkeys(g.nodes, 0.0)
    for edge in drawn:
        w = abs(scored.get(edge, 0.0)) if scores is not None else float(edge in in_circuit)
        weight[edge.sender] += w
        weight[edge.receiver] += w
    top = max(weight.values())
    touched = set(claimed.nodes)
    where = _layout(g)
    nodes = [{"id": n.name, "label": n.name, "layer": _layer(g, n), "x": where[n][0],
              "y": where[n][1], "importance": weight[n] / top if top > 0 else 0.0,
              "in_circuit": n in touched} for n in g.nodes]
    edges = [{"sender": e.sender.name, "receiver": e.receiver.name, "input": edge_input(e),
              "score": float(scored[e]) if e in scored else None,
              "in_circuit": e in in_circuit} for e in drawn]
    if title is None:
        how = f"; scores: {scores.method} {scores.metric}" if scores is not None else ""
        shown = "" if len(drawn) == g.n_edges else f", {len(drawn)} drawn"
        title = f"circuit: {len(claimed)} of {g.n_edges} edges{shown}{how}"
    return {"kind": FIGURE_KIND, "title": title, "nodes": nodes, "edges": edges}


# ----- SVG ------------------------------------------------------------------------------
_WIDTH, _MARGIN_X, _TOP, _BOTTOM = 760.0, 48.0, 40.0, 56.0
_ROW_HEIGHT = 34.0


def _finite(value: Any, what: str) -> float:
    ok = (isinstance(value, (int, float)) and not isinstance(value, bool)
          and math.isfinite(float(value)))
    if not ok:
        raise MiAssertInputError(f"circuit figure: {what} must be a finite number; got {value!r}")
    return float(value)


def _checked_figure(figure: Any) -> tuple[str, list[Mapping[str, Any]], list[Mapping[str, Any]]]:
    if not isinstance(figure, Mapping) or figure.get("kind") != FIGURE_KIND:
        found = figure.get("kind") if isinstance(figure, Mapping) else type(figure).__name__
        raise MiAssertInputError(f"circuit_svg draws a figure spec with kind {FIGURE_KIND!r} "
                                 f"(from circuit_figure); got {found!r}")
    nodes, edges = figure.get("nodes"), figure.get("edges")
    if not isinstance(nodes, Sequence) or not isinstance(edges, Sequence):
        raise MiAssertInputError("circuit figure: 'nodes' and 'edges' must be lists")
    for what, items, keys in (("node", nodes, _NODE_KEYS), ("edge", edges, _EDGE_KEYS)):
        for item in items:
            missing = [k for k in keys if not isinstance(item, Mapping) or k not in item]
            if missing:
                raise MiAssertInputError(f"circuit figure: a {what} lacks {', '.join(missing)}; "
                                         f"each {what} has {', '.join(keys)}")
    ids = {str(n["id"]) for n in nodes}
    for e in edges:
        for end in ("sender", "receiver"):
            if str(e[end]) not in ids:
                raise MiAssertInputError(f"circuit figure: edge {end} {e[end]!r} is not a node id")
        if e["input"] not in EDGE_INPUTS:
            raise MiAssertInputError(f"circuit figure: edge input {e['input']!r} unknown; "
                                     f"allowed {', '.join(EDGE_INPUTS)}")
    return str(figure.get("title", "")), list(nodes), list(edges)


def _edge_name(edge: Mapping[str, Any]) -> str:
    suffix = f".{edge['input']}" if edge["input"] in ("q", "k", "v") else ""
    return f"{edge['sender']}->{edge['receiver']}{suffix}"


def _fmt(v: float) -> str:
    return f"{v:.1f}"


def circuit_svg(figure: Mapping[str, Any]) -> str:
    """An inline ``<svg>`` of a :func:`circuit_figure` spec.

    Nodes are circles sized by ``importance``; edges are curves coloured by their input
    (:data:`INPUT_COLOURS`, with a legend) and as wide as ``|score|`` relative to the largest;
    nodes and edges outside the circuit are faded, and circuit edges are drawn last (on top).
    Every node and edge has a ``<title>`` (hover text) and a ``data-node`` / ``data-edge``
    attribute. All text is escaped; there are no scripts or external references.
    """
    title, nodes, edges = _checked_figure(figure)
    rows = max([1] + [sum(1 for m in nodes if abs(_finite(m["x"], "x") - _finite(n["x"], "x"))
                          < 1e-9) for n in nodes])
    height = _TOP + _BOTTOM + _ROW_HEIGHT * max(rows, 3)
    span_x, span_y = _WIDTH - 2 * _MARGIN_X, height - _TOP - _BOTTOM
    pos: dict[str, tuple[float, float]] = {}
    radius: dict[str, float] = {}
    for n in nodes:
        x, y = _finite(n["x"], "node x"), _finite(n["y"], "node y")
        importance = min(1.0, max(0.0, _finite(n["importance"], "node importance")))
        pos[str(n["id"])] = (_MARGIN_X + span_x * x, _TOP + span_y * y)
        radius[str(n["id"])] = 4.0 + 9.0 * math.sqrt(importance)
    magnitudes = [abs(_finite(e["score"], "edge score")) for e in edges if e["score"] is not None]
    largest = max(magnitudes, default=0.0)
    offsets = {"q": -0.45, "k": 0.0, "v": 0.45}

    def width(e: Mapping[str, Any]) -> float:
        if e["score"] is None or largest <= 0:
            return 2.0 if e["in_circuit"] else 1.0
        return 0.6 + 5.4 * abs(float(e["score"])) / largest

    def order(e: Mapping[str, Any]) -> tuple[bool, float]:
        return (bool(e["in_circuit"]), 0.0 if e["score"] is None else abs(float(e["score"])))

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="mi-circuit" '
           f'viewBox="0 0 {_fmt(_WIDTH)} {_fmt(height)}" width="{_fmt(_WIDTH)}" '
           f'height="{_fmt(height)}" role="img" aria-label="{escape(title)}" '
           'font-family="sans-serif" font-size="10">',
           f"<title>{escape(title)}</title>",
           f'<text x="{_fmt(_MARGIN_X)}" y="18" font-size="12">{escape(title)}</text>',
           '<g class="edges" fill="none">']
    for e in sorted(edges, key=order):
        (x1, y1), (x2, y2) = pos[str(e["sender"])], pos[str(e["receiver"])]
        y2 += offsets.get(str(e["input"]), 0.0) * radius[str(e["receiver"])]
        mid = (x1 + x2) / 2
        colour = INPUT_COLOURS[str(e["input"])]
        name = _edge_name(e)
        score = "not scored" if e["score"] is None else f"score {float(e['score']):.4g}"
        where = "in circuit" if e["in_circuit"] else "not in circuit"
        hover = f"{name} ({e['input']} input): {score}, {where}"
        out.append(
            f'<path data-edge="{escape(name)}" d="M{_fmt(x1)},{_fmt(y1)} C{_fmt(mid)},{_fmt(y1)} '
            f'{_fmt(mid)},{_fmt(y2)} {_fmt(x2)},{_fmt(y2)}" stroke="{colour}"'
            f' stroke-width="{width(e):.2f}" stroke-opacity="{0.9 if e["in_circuit"] else 0.12}">'
            f"<title>{escape(hover)}</title></path>")
    out.append("</g>")
    out.append('<g class="nodes">')
    for n in nodes:
        node_id = str(n["id"])
        x, y = pos[node_id]
        on = bool(n["in_circuit"])
        hover = (f"{n['label']} (layer {n['layer']}): importance "
                 f"{float(n['importance']):.3g}, {'in circuit' if on else 'not in circuit'}")
        out.append(
            f'<g data-node="{escape(node_id)}" opacity="{1.0 if on else 0.35}">'
            f"<title>{escape(hover)}</title>"
            f'<circle cx="{_fmt(x)}" cy="{_fmt(y)}" r="{radius[node_id]:.2f}" '
            f'fill="{"#333333" if on else "#bbbbbb"}" stroke="#ffffff" stroke-width="1"/>'
            f'<text x="{_fmt(x)}" y="{_fmt(y - radius[node_id] - 3)}" text-anchor="middle">'
            f"{escape(str(n['label']))}</text></g>")
    out.append("</g>")
    present = [k for k in EDGE_INPUTS if any(e["input"] == k for e in edges)] or list(EDGE_INPUTS)
    out.append(f'<g class="legend" transform="translate({_fmt(_MARGIN_X)},{_fmt(height - 24)})">')
    for i, key in enumerate(present):
        x0 = 70.0 * i
        out.append(f'<line x1="{_fmt(x0)}" y1="0" x2="{_fmt(x0 + 18)}" y2="0" '
                   f'stroke="{INPUT_COLOURS[key]}" stroke-width="3"/>'
                   f'<text x="{_fmt(x0 + 22)}" y="3.5">{escape(key)}</text>')
    out.append(f'<text x="{_fmt(70.0 * len(present) + 10)}" y="3.5" fill="#777777">'
               "faded: not in the circuit; width: |score|</text>")
    out.append("</g></svg>")
    return "".join(out)


__all__ = ["EDGE_INPUTS", "INPUT_COLOURS", "circuit_figure", "circuit_svg", "edge_input"]
