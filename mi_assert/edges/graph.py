"""The computational graph of a transformer at edge level: who writes into whose input.

Nodes are the embeddings (token + position, one node ``embed``), every attention head's output
(``L{l}H{h}``), every MLP (``mlp{l}``) and the logits. An edge carries one sender's output into
one receiver input: a head has three inputs (``.q``, ``.k``, ``.v``), an MLP and the logits one
each. A sender must be upstream of its receiver: a head in layer l reads ``embed`` and the heads
and MLPs of layers < l; the MLP of layer l also reads the heads of layer l (not when attention
and MLP run in parallel, GPT-J / GPT-NeoX style); the logits read every sender. This is the
graph of the auto-circuit and EAP papers (GPT-2 small: 32,491 edges).

Edge names are stable strings that parse back: ``L0H0->L1H0.k``, ``embed->mlp0``,
``mlp1->logits``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from mi_assert.errors import MiAssertInputError, suggest

NodeKind = Literal["embed", "head", "mlp", "logits"]
HeadInput = Literal["q", "k", "v"]
HEAD_INPUTS: tuple[HeadInput, ...] = ("q", "k", "v")

_SENDER_RE = re.compile(r"^(?:(?P<embed>embed)|L(?P<hl>\d+)H(?P<hh>\d+)|mlp(?P<ml>\d+))$")
_RECEIVER_RE = re.compile(
    r"^(?:(?P<logits>logits)|L(?P<hl>\d+)H(?P<hh>\d+)|mlp(?P<ml>\d+))(?:\.(?P<inp>[a-z]+))?$")
NAME_FORMAT = ("SENDER->RECEIVER with senders embed, L{layer}H{head} or mlp{layer} and receivers "
               "L{layer}H{head}.q / .k / .v, mlp{layer} or logits (e.g. 'L0H0->L1H0.k', "
               "'embed->mlp0', 'L1H0->logits')")


@dataclass(frozen=True)
class Node:
    """A graph node: ``kind`` with its ``layer`` (heads, MLPs) and ``head`` (heads)."""

    kind: NodeKind
    layer: int | None = None
    head: int | None = None

    @property
    def name(self) -> str:
        if self.kind == "head":
            return f"L{self.layer}H{self.head}"
        if self.kind == "mlp":
            return f"mlp{self.layer}"
        return self.kind

    def __str__(self) -> str:
        return self.name


EMBED = Node("embed")
LOGITS = Node("logits")


def head(layer: int, head_index: int) -> Node:
    return Node("head", layer, head_index)


def mlp(layer: int) -> Node:
    return Node("mlp", layer)


@dataclass(frozen=True)
class Edge:
    """``sender`` output → ``receiver`` input (``input`` is q/k/v for head receivers, else None)."""

    sender: Node
    receiver: Node
    input: HeadInput | None = None

    def __post_init__(self) -> None:
        if self.sender.kind == "logits":
            raise MiAssertInputError(f"edge {self.name!r}: the logits receive only; senders are "
                                     "embed, heads and MLPs")
        if self.receiver.kind == "embed":
            raise MiAssertInputError(f"edge {self.name!r}: embed sends only; receivers are head "
                                     "inputs (.q/.k/.v), MLPs and logits")
        if self.receiver.kind == "head" and self.input not in HEAD_INPUTS:
            raise MiAssertInputError(
                f"edge {self.name!r}: a head receives on three inputs; write "
                f"{self.sender.name}->{self.receiver.name}.q, .k or .v")
        if self.receiver.kind != "head" and self.input is not None:
            raise MiAssertInputError(
                f"edge {self.name!r}: only head receivers have q/k/v inputs; "
                f"{self.receiver.name} has one input")

    @property
    def receiver_name(self) -> str:
        """The receiver input: ``L1H0.k``, ``mlp0``, ``logits``."""
        suffix = f".{self.input}" if self.input else ""
        return f"{self.receiver.name}{suffix}"

    @property
    def name(self) -> str:
        return f"{self.sender.name}->{self.receiver_name}"

    def __str__(self) -> str:
        return self.name

    @classmethod
    def parse(cls, name: str) -> Edge:
        """The edge a name spells (syntax only: :meth:`EdgeGraph.edge` checks it against a model)."""
        if not isinstance(name, str):
            raise MiAssertInputError(f"edge names are strings ({NAME_FORMAT}); got {name!r}")
        parts = name.strip().split("->")
        if len(parts) != 2:
            raise MiAssertInputError(f"edge name {name!r} not understood: write {NAME_FORMAT}")
        sender_text, receiver_text = (p.strip() for p in parts)
        s = _SENDER_RE.match(sender_text)
        r = _RECEIVER_RE.match(receiver_text)
        if s is None:
            raise MiAssertInputError(
                f"edge name {name!r}: sender {sender_text!r} not understood; write {NAME_FORMAT}")
        if r is None:
            raise MiAssertInputError(
                f"edge name {name!r}: receiver {receiver_text!r} not understood; write {NAME_FORMAT}")
        if s.group("embed"):
            sender = EMBED
        elif s.group("hl") is not None:
            sender = head(int(s.group("hl")), int(s.group("hh")))
        else:
            sender = mlp(int(s.group("ml")))
        inp = r.group("inp")
        if inp is not None and inp not in HEAD_INPUTS:
            raise MiAssertInputError(f"edge name {name!r}: input {inp!r} unknown; a head receives "
                                     "on .q, .k or .v, an MLP and the logits on one unnamed input")
        if r.group("logits"):
            receiver = LOGITS
        elif r.group("hl") is not None:
            receiver = head(int(r.group("hl")), int(r.group("hh")))
        else:
            receiver = mlp(int(r.group("ml")))
        return cls(sender, receiver, inp)  # type: ignore[arg-type]


def _senders_upstream_of(receiver: Node, n_layers: int, n_heads: int, has_mlp: bool,
                         parallel_attn_mlp: bool) -> list[Node]:
    """Senders that write into ``receiver``'s input, in forward order."""
    until = n_layers if receiver.kind == "logits" else receiver.layer
    assert until is not None
    out = [EMBED]
    for layer in range(until):
        out += [head(layer, h) for h in range(n_heads)]
        if has_mlp:
            out.append(mlp(layer))
    if receiver.kind == "mlp" and not parallel_attn_mlp:
        out += [head(until, h) for h in range(n_heads)]  # resid_mid holds layer l's attention
    return out


@dataclass(frozen=True)
class EdgeGraph:
    """Every edge of a model with ``n_layers`` × ``n_heads`` heads, in a fixed order.

    Order: receivers in forward order (per layer: each head's q, k, v inputs, then the MLP;
    the logits last); for each receiver input, its senders in forward order (``embed``, then
    per layer the heads then the MLP).
    """

    n_layers: int
    n_heads: int
    has_mlp: bool = True
    parallel_attn_mlp: bool = False
    edges: tuple[Edge, ...] = field(init=False, repr=False, compare=False)
    senders: tuple[Node, ...] = field(init=False, repr=False, compare=False)
    _index: dict[Edge, int] = field(init=False, repr=False, compare=False)
    _sender_index: dict[Node, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for what, value, low in (("n_layers", self.n_layers, 1), ("n_heads", self.n_heads, 1)):
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise MiAssertInputError(f"EdgeGraph: {what} must be an int >= {low}; got {value!r}")
        senders = _senders_upstream_of(LOGITS, self.n_layers, self.n_heads, self.has_mlp,
                                       self.parallel_attn_mlp)
        edges: list[Edge] = []
        for receiver, inp in self.receiver_inputs():
            ups = _senders_upstream_of(receiver, self.n_layers, self.n_heads, self.has_mlp,
                                       self.parallel_attn_mlp)
            edges += [Edge(s, receiver, inp) for s in ups]
        object.__setattr__(self, "senders", tuple(senders))
        object.__setattr__(self, "edges", tuple(edges))
        object.__setattr__(self, "_index", {e: i for i, e in enumerate(edges)})
        object.__setattr__(self, "_sender_index", {n: i for i, n in enumerate(senders)})

    @classmethod
    def from_handle(cls, model: Any) -> EdgeGraph:
        """The graph of any model :func:`mi_assert.as_handle` accepts (or a zoo spec / path)."""
        from mi_assert.loading import resolve_model

        handle = resolve_model(model)
        return cls(handle.n_layers, handle.n_heads, handle.has_mlp, handle.parallel_attn_mlp)

    # ----- structure -------------------------------------------------------------------
    def receiver_inputs(self) -> list[tuple[Node, HeadInput | None]]:
        """Every receiver input in forward order: (head, q/k/v), (mlp, None), (logits, None)."""
        out: list[tuple[Node, HeadInput | None]] = []
        for layer in range(self.n_layers):
            out += [(head(layer, h), inp) for h in range(self.n_heads) for inp in HEAD_INPUTS]
            if self.has_mlp:
                out.append((mlp(layer), None))
        out.append((LOGITS, None))
        return out

    @property
    def nodes(self) -> tuple[Node, ...]:
        """Every node in forward order (the senders, then the logits)."""
        return self.senders + (LOGITS,)

    @property
    def n_edges(self) -> int:
        return len(self.edges)

    def __len__(self) -> int:
        return len(self.edges)

    def __iter__(self) -> Iterator[Edge]:
        return iter(self.edges)

    def __contains__(self, edge: object) -> bool:
        return isinstance(edge, Edge) and edge in self._index

    def sender_index(self, node: Node) -> int:
        """Position of ``node`` in :attr:`senders` (forward order)."""
        return self._sender_index[node]

    def edges_into(self, receiver: Node | str, input: HeadInput | None = None) -> list[Edge]:
        """The edges into one receiver input, in graph order."""
        node = self.node(receiver) if isinstance(receiver, str) else receiver
        return [e for e in self.edges if e.receiver == node and e.input == input]

    # ----- lookup ----------------------------------------------------------------------
    def node(self, name: str) -> Node:
        """The node called ``name`` (``embed``, ``L1H0``, ``mlp0``, ``logits``) in this model."""
        names = {n.name: n for n in self.nodes}
        if name not in names:
            raise MiAssertInputError(
                f"node {name!r} is not in this model ({self._describe()}).{suggest(name, names)}")
        return names[name]

    def edge(self, edge: Edge | str) -> Edge:
        """``edge`` (an :class:`Edge` or a name) checked against this model's graph."""
        parsed = Edge.parse(edge) if isinstance(edge, str) else edge
        if not isinstance(parsed, Edge):
            raise MiAssertInputError(f"expected an Edge or an edge name ({NAME_FORMAT}); got {edge!r}")
        if parsed in self._index:
            return parsed
        for node in (parsed.sender, parsed.receiver):
            self._check_node(parsed, node)
        raise MiAssertInputError(self._not_upstream_message(parsed))

    def index(self, edge: Edge | str) -> int:
        """Position of ``edge`` in :attr:`edges`."""
        return self._index[self.edge(edge)]

    def _check_node(self, edge: Edge, node: Node) -> None:
        where = f"edge {edge.name!r}: {node.name}"
        if node.kind == "mlp" and not self.has_mlp:
            raise MiAssertInputError(f"{where}: the model is attention-only (no MLP nodes); nodes "
                                     f"are {self._describe()}")
        if node.layer is not None and not 0 <= node.layer < self.n_layers:
            raise MiAssertInputError(f"{where} is not in the model: layers are "
                                     f"0..{self.n_layers - 1} ({self._describe()})")
        if node.head is not None and not 0 <= node.head < self.n_heads:
            raise MiAssertInputError(f"{where} is not in the model: heads are "
                                     f"0..{self.n_heads - 1} ({self._describe()})")

    def _not_upstream_message(self, edge: Edge) -> str:
        r = edge.receiver
        if r.kind == "head":
            reads = (f"a head in layer {r.layer} reads embed and the heads"
                     f"{' and MLPs' if self.has_mlp else ''} of layers < {r.layer}")
        else:
            reads = (f"the MLP of layer {r.layer} reads embed, the heads and MLPs of layers "
                     f"< {r.layer}" + ("" if self.parallel_attn_mlp else
                                       f" and the heads of layer {r.layer}"))
        return (f"edge {edge.name!r}: sender {edge.sender.name} is not upstream of receiver "
                f"{edge.receiver_name} ({reads}); senders must run before their receivers")

    def _describe(self) -> str:
        kinds = "embed, heads L{l}H{h}" + (", mlp{l}" if self.has_mlp else "") + ", logits"
        return f"{self.n_layers} layers x {self.n_heads} heads: {kinds}"

    def describe(self) -> dict[str, Any]:
        """Plain data for reports and JSON: shape and edge count."""
        return {"n_layers": self.n_layers, "n_heads": self.n_heads, "has_mlp": self.has_mlp,
                "parallel_attn_mlp": self.parallel_attn_mlp, "n_edges": self.n_edges}


def count_edges(n_layers: int, n_heads: int, has_mlp: bool = True,
                parallel_attn_mlp: bool = False) -> int:
    """The number of edges, in closed form (checks :class:`EdgeGraph`'s enumeration)."""
    m = int(has_mlp)
    heads = sum(3 * n_heads * (1 + layer * (n_heads + m)) for layer in range(n_layers))
    own = 0 if parallel_attn_mlp else n_heads
    mlps = m * sum(1 + layer * (n_heads + 1) + own for layer in range(n_layers))
    return heads + mlps + 1 + n_layers * (n_heads + m)
