"""Where each receiver input lives in a HookedTransformer with split inputs switched on."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from mi_assert.edges.graph import Edge, EdgeGraph


def receiver_hook(edge: Edge, n_layers: int) -> tuple[str, int | None]:
    """``(TL hook name, head index or None)`` of ``edge``'s receiver input.

    Head inputs: ``blocks.L.hook_{q,k,v}_input`` ``[batch, pos, head, d_model]`` (the head's
    slice of the residual before its layer norm); MLP inputs: ``blocks.L.hook_mlp_in``
    ``[batch, pos, d_model]``; logits: the final residual ``blocks.{last}.hook_resid_post``
    (what ``ln_final`` normalises), ``[batch, pos, d_model]``.
    """
    r = edge.receiver
    if r.kind == "head":
        return f"blocks.{r.layer}.hook_{edge.input}_input", r.head
    if r.kind == "mlp":
        return f"blocks.{r.layer}.hook_mlp_in", None
    return f"blocks.{n_layers - 1}.hook_resid_post", None


def receiver_layer(edge: Edge, n_layers: int) -> int:
    """The layer whose forward first reads the edge (``n_layers`` for the logits)."""
    layer = edge.receiver.layer
    return n_layers if layer is None else layer


_LAYOUTS: dict[EdgeGraph, dict[str, tuple[Tensor, Tensor, Tensor]]] = {}


def edge_layout(graph: EdgeGraph, edges: Sequence[Edge]) -> dict[str, tuple[Tensor, Tensor,
                                                                             Tensor]]:
    """Receiver hook -> (edge rows, sender indices, head indices; 0 for hooks without heads) of
    ``edges``, in first-seen order; cached per graph for the graph's own edge list (the default
    sweep)."""
    full = len(edges) == len(graph.edges) and all(a is b for a, b in zip(edges, graph.edges,
                                                                            strict=True))
    if full and graph in _LAYOUTS:
        return _LAYOUTS[graph]
    groups: dict[str, tuple[list[int], list[int], list[int]]] = {}
    for i, edge in enumerate(edges):
        name, head = receiver_hook(edge, graph.n_layers)
        rows, senders, heads = groups.setdefault(name, ([], [], []))
        rows.append(i)
        senders.append(graph.sender_index(edge.sender))
        heads.append(head or 0)
    layout = {name: (torch.tensor(r), torch.tensor(s), torch.tensor(h))
              for name, (r, s, h) in groups.items()}
    if full:
        if len(_LAYOUTS) > 16:
            _LAYOUTS.clear()
        _LAYOUTS[graph] = layout
    return layout
