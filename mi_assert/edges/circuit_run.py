"""The metric of a model in which only a circuit's edges carry the clean signal (denoising).

Every edge ``s -> r`` carries a message, the sender's output, into the receiver input. In the
circuit run of circuit ``C`` on a clean/corrupted pair:

* an edge of ``C`` carries the sender's output *in the circuit run*;
* every other edge carries the sender's output in the corrupted run;
* the clean signal enters at ``embed``: in the circuit run ``embed`` outputs the clean
  embedding, so it reaches a node only along a path of circuit edges from ``embed``.

Run on the corrupted prompts, this is: receiver input ``r`` gets ``x_corr(r) + Σ_{s->r in C}
(out_s(circuit run) - out_s(corrupted))``. With every edge in ``C`` the run is the clean run,
with none it is the corrupted run. A sender that no path of circuit edges from ``embed``
reaches outputs exactly its corrupted value, so its difference is set to zero, not
recomputed: such edges then change nothing, without float noise.

A single edge is not scored as :mod:`mi_assert.edges.exact` scores it. There the patched
receiver's change flows on through *every* later edge. Here it flows only along circuit
edges, so one edge ``embed -> L0H0.v`` alone recovers nothing unless a circuit path carries it
on to the logits. Adding a set of exact-patching differences instead would count a chain of
edges twice: the chain's first edge already changes what its second edge's sender outputs.

"The corrupted run" is the recorded run the caller passes: the corrupted run itself, or its
mean or resampled transform (:mod:`mi_assert.edges.ablation`), which this module treats alike.

Each circuit is one variant of the corrupted batch; variants are stacked along the batch axis,
and each layer runs once, from the recorded corrupted residual, with split inputs on.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

from mi_assert.edges.circuit import Circuit
from mi_assert.edges.graph import HEAD_INPUTS, EdgeGraph, Node
from mi_assert.edges.readout import MetricReadout
from mi_assert.edges.senders import RecordedRun
from mi_assert.edges.tl_model import split_inputs
from mi_assert.kernels.chunking import chunks

#: planning budget for the per-variant sender differences of one chunk of circuits
DELTA_BUDGET_BYTES = 64 << 20


def _receiver_key(node: Node, inp: str | None) -> tuple[Node, str | None]:
    return (node, inp)


def edge_masks(graph: EdgeGraph, circuits: Sequence[Circuit]) -> dict[tuple[Node, str | None], Tensor]:
    """Per receiver input: ``[n_circuits, n_senders]``, 1.0 where the edge is in the circuit."""
    masks = {_receiver_key(node, inp): torch.zeros(len(circuits), len(graph.senders))
             for node, inp in graph.receiver_inputs()}
    for v, circuit in enumerate(circuits):
        for edge in circuit.edges:
            masks[_receiver_key(edge.receiver, edge.input)][v, graph.sender_index(edge.sender)] = 1.0
    return masks


def reached_senders(graph: EdgeGraph, circuits: Sequence[Circuit]) -> Tensor:
    """``[n_circuits, n_senders]`` bool: the senders a path of circuit edges from ``embed``
    reaches (``embed`` itself always)."""
    out = torch.zeros(len(circuits), len(graph.senders), dtype=torch.bool)
    for v, circuit in enumerate(circuits):
        reached = {graph.senders[0]}
        for edge in sorted(circuit.edges, key=lambda e: graph.sender_index(e.sender)):
            # sorted by sender: every edge into a sender comes before the edges out of it
            if edge.sender in reached and edge.receiver.kind != "logits":
                reached.add(edge.receiver)
        for node in reached:
            out[v, graph.sender_index(node)] = True
    return out


def circuit_messages(mask: Tensor, reach: Tensor, deltas: Tensor) -> Tensor:
    """What one receiver input gains in each circuit's run: ``Σ_s mask[v, s] reach[v, s]
    delta[v, s]``, ``[V, batch, pos, d_model]``."""
    weights = mask.to(deltas) * reach.to(deltas)
    return torch.einsum("vs,vsbpd->vbpd", weights, deltas)


class _LayerRun:
    """Hooks for one block of a stacked circuit run: add the circuit messages to each input,
    record the block's head and MLP differences."""

    def __init__(self, model: Any, graph: EdgeGraph, layer: int, masks: dict[tuple[Node, str | None], Tensor],
                 reach: Tensor, deltas: Tensor, corrupted: RecordedRun) -> None:
        self.model, self.graph, self.layer = model, graph, layer
        self.masks, self.reach, self.deltas, self.corrupted = masks, reach, deltas, corrupted
        self.n_var = deltas.shape[0]
        self.heads = [graph.sender_index(Node("head", layer, h)) for h in range(graph.n_heads)]
        self.fired: set[str] = set()
        self.raw_head_deltas: Tensor | None = None

    def _weighted_messages(self, node: Node, inp: str | None) -> Tensor:
        return circuit_messages(self.masks[_receiver_key(node, inp)], self.reach, self.deltas)

    def head_input(self, inp: str) -> Callable[[Tensor, Any], Tensor]:
        def hook(act: Tensor, hook: Any) -> Tensor:
            self.fired.add(hook.name)
            add = torch.stack([self._weighted_messages(Node("head", self.layer, h), inp)
                               for h in range(self.graph.n_heads)], dim=3)  # [V, b, p, H, d]
            return act + add.flatten(0, 1).to(act.dtype)

        return hook

    def head_outputs(self, z: Tensor, hook: Any) -> None:
        self.fired.add(hook.name)
        w_o = self.model.blocks[self.layer].attn.W_O  # [head, d_head, d_model]
        z = z.view(self.n_var, -1, *z.shape[1:])  # [V, batch, pos, head, d_head]
        out = torch.einsum("vbphe,hed->vhbpd", z, w_o.to(z.dtype))
        raw = out - self.corrupted.outputs[self.heads][None].to(out.dtype)
        self.raw_head_deltas = raw
        keep = self.reach[:, self.heads].to(raw)[:, :, None, None, None]
        self.deltas[:, self.heads] = (raw * keep).to(self.deltas.dtype)

    def mlp_input(self, act: Tensor, hook: Any) -> Tensor:
        self.fired.add(hook.name)
        x = act.view(self.n_var, -1, *act.shape[1:])
        if not self.graph.parallel_attn_mlp:
            # resid_mid holds this block's heads as the circuit run computed them; an MLP
            # receives them only along its own circuit edges, so take them back out
            assert self.raw_head_deltas is not None
            x = x - self.raw_head_deltas.sum(dim=1).to(x.dtype)
        x = x + self._weighted_messages(Node("mlp", self.layer), None).to(x.dtype)
        return x.flatten(0, 1)

    def mlp_output(self, out: Tensor, hook: Any) -> None:
        self.fired.add(hook.name)
        index = self.graph.sender_index(Node("mlp", self.layer))
        raw = out.view(self.n_var, -1, *out.shape[1:]) - self.corrupted.outputs[index][None]
        self.deltas[:, index] = raw * self.reach[:, index].to(raw)[:, None, None, None]

    def hooks(self) -> list[tuple[str, Callable[..., Any]]]:
        prefix = f"blocks.{self.layer}"
        out: list[tuple[str, Callable[..., Any]]] = [
            (f"{prefix}.hook_{inp}_input", self.head_input(inp)) for inp in HEAD_INPUTS]
        out.append((f"{prefix}.attn.hook_z", self.head_outputs))
        if self.graph.has_mlp:
            out += [(f"{prefix}.hook_mlp_in", self.mlp_input),
                    (f"{prefix}.hook_mlp_out", self.mlp_output)]
        return out


def _layer_is_reached(graph: EdgeGraph, layer: int, masks: dict[tuple[Node, str | None], Tensor],
                      reach: Tensor) -> bool:
    """Whether any circuit carries a clean message into a receiver of ``layer``."""
    for node, inp in graph.receiver_inputs():
        if node.layer == layer and node.kind != "logits":
            if bool((masks[_receiver_key(node, inp)].bool() & reach).any()):
                return True
    return False


def _run_chunk(model: Any, graph: EdgeGraph, circuits: Sequence[Circuit], embed_delta: Tensor,
               corrupted: RecordedRun, readout: MetricReadout) -> Tensor:
    """Metric ``[len(circuits), batch]`` of each circuit's run."""
    masks = edge_masks(graph, circuits)
    reach = reached_senders(graph, circuits)
    n_var = len(circuits)
    deltas = torch.zeros(n_var, len(graph.senders), *embed_delta.shape,
                         dtype=embed_delta.dtype, device=embed_delta.device)
    deltas[:, 0] = embed_delta  # senders[0] is embed: the clean signal's only entry
    masks = {key: m.to(embed_delta.device) for key, m in masks.items()}
    reach = reach.to(embed_delta.device)
    for layer in range(graph.n_layers):
        if not _layer_is_reached(graph, layer, masks, reach):
            continue  # every sender of this layer stays at its corrupted output
        run = _LayerRun(model, graph, layer, masks, reach, deltas, corrupted)
        hooks = run.hooks()
        resid = corrupted.resid_pre[layer].repeat(n_var, 1, 1)
        with split_inputs(model):
            model.run_with_hooks(resid, start_at_layer=layer, stop_at_layer=layer + 1,
                                 fwd_hooks=hooks)
        missing = {name for name, _ in hooks} - run.fired
        if missing:
            raise RuntimeError(f"TransformerLens did not call hooks {sorted(missing)}: split "
                               "inputs (cfg.use_split_qkv_input / use_hook_mlp_in) not active")
    into_logits = circuit_messages(masks[_receiver_key(Node("logits"), None)], reach, deltas)
    final = corrupted.final_resid[None] + into_logits.to(corrupted.final_resid.dtype)
    return readout(final.flatten(0, 1))


def circuits_per_chunk(graph: EdgeGraph, embed_delta: Tensor, rows: int) -> int:
    """Circuits one stacked run may hold: ``rows`` prompt rows, and the differences of every
    sender per circuit within :data:`DELTA_BUDGET_BYTES`."""
    batch = embed_delta.shape[0]
    per_circuit = len(graph.senders) * embed_delta.numel() * embed_delta.element_size()
    return max(1, min(rows // batch, DELTA_BUDGET_BYTES // max(per_circuit, 1)))


@torch.no_grad()
def circuit_runs(model: Any, graph: EdgeGraph, circuits: Sequence[Circuit], embed_delta: Tensor,
                 corrupted: RecordedRun, readout: MetricReadout, rows: int) -> Tensor:
    """Metric per circuit and prompt, ``[n_circuits, batch]`` (module docstring).

    ``embed_delta``: ``[batch, pos, d_model]`` clean minus corrupted embedding; ``rows``: most
    prompt rows per stacked forward."""
    out = torch.empty(len(circuits), embed_delta.shape[0])
    for part in chunks(len(circuits), circuits_per_chunk(graph, embed_delta, rows)):
        out[list(part)] = _run_chunk(model, graph, [circuits[i] for i in part], embed_delta,
                                     corrupted, readout).float().cpu()
    return out
