"""Where each receiver input lives in a HookedTransformer with split inputs switched on."""

from __future__ import annotations

from mi_assert.edges.graph import Edge


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
