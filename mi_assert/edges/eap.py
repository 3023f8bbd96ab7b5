"""Edge attribution patching (EAP, Syed et al. 2023): every edge from one backward pass.

``score(s -> r) = (out_s_clean - out_s_corr) · d metric / d (input of r)``, the gradient taken
on the corrupted run and the dot product summed over positions and ``d_model``: the first-order
estimate of exact edge patching's ``metric(patched) - metric(corrupted)``. Prompts do not
interact inside a batch, so the gradient of the summed metric gives each prompt its own
gradient and EAP has per-prompt values like the exact method.

It is exact where the metric is linear in the receiver input given everything else the
corrupted run computes: edges into the logits of a model without a final layer norm and with
a linear metric (logit difference), and edges into the v input of last-layer heads of such a
model (a head is linear in its values at a fixed pattern). It is poor where attention saturates
or layer norms rescale a large difference (AtP*, Kramár et al. 2024; EAP-IG, Hanna et al. 2024).

EAP-IG (Hanna et al. 2024) replaces the one gradient by integrated gradients along the path
from the corrupted to the clean input: the runs start from the embeddings
``embed_corr + alpha (embed_clean - embed_corr)``, so every receiver input moves along the
model's own path from its corrupted towards its clean value, and the gradient at each receiver
input is averaged over ``alpha = k / steps``, ``k = 0 .. steps - 1`` (left Riemann sum; the
first point is the corrupted run, so ``steps = 1`` is EAP). The score is still
``(out_s_clean - out_s_corr) · mean gradient``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from mi_assert.causal.metrics import evaluate_metric
from mi_assert.cost import count_forward
from mi_assert.edges.graph import Edge, EdgeGraph
from mi_assert.edges.receivers import receiver_hook


def receiver_gradients(model: Any, hooks: Sequence[str], tokens: Tensor, metric: Any,
                       embed: Tensor | None = None) -> dict[str, Tensor]:
    """``d sum(metric) / d (receiver input)`` per hook name, float32, on the run of ``tokens``;
    with ``embed`` (``[batch, pos, d_model]``) that run starts from ``embed`` in place of the
    token + position embedding. Runs with split inputs already switched on."""
    batch = tokens.shape[0]
    captured: dict[str, Tensor] = {}

    def keep(act: Tensor, hook: Any) -> None:
        captured[hook.name] = act

    def start_from(act: Tensor, hook: Any) -> Tensor:
        assert embed is not None
        return embed.to(act.dtype).requires_grad_(True)

    fwd_hooks: list[tuple[str, Any]] = [] if embed is None else [("blocks.0.hook_resid_pre",
                                                                  start_from)]
    fwd_hooks += [(name, keep) for name in hooks]
    with torch.enable_grad():
        count_forward(int(tokens.shape[0]))
        logits = model.run_with_hooks(tokens, return_type="logits", fwd_hooks=fwd_hooks)
        missing = sorted(set(hooks) - set(captured))
        if missing:
            raise RuntimeError(f"TransformerLens did not call hooks {missing}: split inputs "
                               "(cfg.use_split_qkv_input / use_hook_mlp_in) not active")
        value = evaluate_metric(metric, logits, batch).sum()
        grads = torch.autograd.grad(value, [captured[name] for name in hooks], allow_unused=True)
    return {name: (g if g is not None else torch.zeros_like(captured[name])).detach().float()
            for name, g in zip(hooks, grads, strict=True)}


def contract(graph: EdgeGraph, edges: Sequence[Edge], deltas: Tensor,
             grad_of: dict[str, Tensor]) -> Tensor:
    """``delta_sender · grad_receiver`` summed over positions and ``d_model``: ``[n_edges,
    batch]``, one contraction per receiver hook over the senders it needs."""
    d = deltas.float()
    batch = d.shape[1]
    out = torch.empty(len(edges), batch)
    groups: dict[str, list[int]] = {}
    for i, edge in enumerate(edges):
        groups.setdefault(receiver_hook(edge, graph.n_layers)[0], []).append(i)
    for name, indices in groups.items():
        grad = grad_of[name]
        wanted = [graph.sender_index(edges[i].sender) for i in indices]
        unique = sorted(set(wanted))
        where = {s: k for k, s in enumerate(unique)}
        sent = d[torch.tensor(unique, device=d.device)]  # [senders, batch, pos, d_model]
        if grad.ndim == 4:  # head inputs [batch, pos, head, d_model]
            table = torch.einsum("sbpm,bphm->shb", sent, grad)
            heads = [receiver_hook(edges[i], graph.n_layers)[1] or 0 for i in indices]
        else:  # MLP input or final residual [batch, pos, d_model]
            table = torch.einsum("sbpm,bpm->sb", sent, grad)[:, None]
            heads = [0] * len(indices)
        rows = torch.tensor([where[s] for s in wanted], device=d.device)
        out[indices] = table[rows, torch.tensor(heads, device=d.device)].cpu()
    return out


def _hooks(graph: EdgeGraph, edges: Sequence[Edge]) -> list[str]:
    return sorted({receiver_hook(e, graph.n_layers)[0] for e in edges})


def eap_edge_effects(model: Any, graph: EdgeGraph, edges: Sequence[Edge], deltas: Tensor,
                     corrupted_tokens: Tensor, metric: Any) -> Tensor:
    """EAP scores per edge and prompt: ``[n_edges, batch]``.

    ``deltas``: ``[n_senders, batch, pos, d_model]`` clean minus corrupted sender outputs.
    Runs with split inputs already switched on (:func:`mi_assert.edges.tl_model.split_inputs`).
    """
    grad_of = receiver_gradients(model, _hooks(graph, edges), corrupted_tokens, metric)
    return contract(graph, edges, deltas, grad_of)


def eap_ig_edge_effects(model: Any, graph: EdgeGraph, edges: Sequence[Edge], deltas: Tensor,
                        corrupted_tokens: Tensor, metric: Any, corrupted_embed: Tensor,
                        steps: int) -> Tensor:
    """EAP-IG scores per edge and prompt: ``[n_edges, batch]`` (module docstring).

    ``corrupted_embed``: ``[batch, pos, d_model]``, the corrupted run's ``embed`` output
    (``deltas[0]`` is the clean minus corrupted one); the gradients are averaged over the runs
    that start from ``corrupted_embed + (k / steps) deltas[0]``, ``k = 0 .. steps - 1``. With
    ``steps = 1`` this is EAP. Runs with split inputs already switched on.
    """
    hooks = _hooks(graph, edges)
    total = receiver_gradients(model, hooks, corrupted_tokens, metric)  # k = 0: the corrupted run
    for k in range(1, steps):
        embed = (corrupted_embed + (k / steps) * deltas[0]).detach()
        step = receiver_gradients(model, hooks, corrupted_tokens, metric, embed)
        total = {name: total[name] + step[name] for name in hooks}
    if steps > 1:
        total = {name: g / steps for name, g in total.items()}
    return contract(graph, edges, deltas, total)
