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

Two ways to get the gradients. The fast path (:func:`attribution_run`, used whenever
:func:`fast_path_supported`) runs without split inputs and derives each head's input gradient
from the gradient at its q/k/v projection (notes above :data:`_NORMS`); the same run gives the
corrupted sender outputs. The split-input path (:func:`receiver_gradients` and
:func:`contract`) is the fallback for other models and the reference the fast path is tested
against (``tests/edges/test_eap_fast.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from mi_assert.causal.metrics import evaluate_metric
from mi_assert.cost import count_forward
from mi_assert.edges.graph import Edge, EdgeGraph
from mi_assert.edges.receivers import edge_layout, receiver_hook
from mi_assert.edges.tl_model import split_inputs
from mi_assert.kernels.chunking import available_bytes


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


# --------------------------------------------------------------------------------------------
# Fast path: no split inputs. The gradient run is a plain forward (hooks only read) and one
# backward; each head's input gradient is computed from the gradient at its q/k/v projection.
#
# A head's q input x enters as ``q = ln1(x) @ W_Q[h] + b_Q[h]`` (the same ln1 as every head's,
# applied to this head's copy), so ``d metric / d x = J_ln1(x)^T (g_q[h] @ W_Q[h]^T)`` with
# ``g_q = d metric / d hook_q``. For ``ln1(x) = w * xhat + b``, ``xhat = (x - mean x) / sigma``
# (LayerNorm; RMSNorm drops the mean, the ``Pre`` variants drop ``w`` and ``b``):
# ``J^T v = (u - mean(u) - xhat * mean(u * xhat)) / sigma`` with ``u = w * v`` (RMSNorm: no
# ``- mean(u)``). ``sigma`` and ``xhat`` are ln1's own ``hook_scale`` and ``hook_normalized``.
# The corrupted run that gives the gradients also gives the corrupted sender outputs, so EAP
# costs one recorded clean run, one forward and one backward.
# --------------------------------------------------------------------------------------------

#: ln1 classes the fast path knows: name -> (subtracts the mean, has a weight ``w``)
_NORMS: dict[str, tuple[bool, bool]] = {
    "LayerNorm": (True, True), "LayerNormPre": (True, False),
    "RMSNorm": (False, True), "RMSNormPre": (False, False), "Identity": (False, False),
}
#: memory for one gradient run's activations on CPU: EAP-IG stacks its steps along the batch up
#: to this (on the benchmark model 2-3 steps of 8 x 16 tokens per run beat both 1 and all 5);
#: on a GPU, 60% of the free memory
GRAD_CPU_BUDGET_BYTES = 32 << 20


def fast_path_supported(model: Any) -> bool:
    """Whether :func:`attribution_run` can take ``model``: fp32/fp64, no 4-bit weights, one
    k/v per head (plain ``Attention``), the model's own split/attn-in flags off, and an ln1 of a
    known kind (LayerNorm, LayerNormPre, RMSNorm, RMSNormPre or none). Otherwise the sweep
    falls back to split inputs (:func:`receiver_gradients`)."""
    cfg = model.cfg
    if cfg.dtype not in (torch.float32, torch.float64) or getattr(cfg, "load_in_4bit", False):
        return False
    if getattr(cfg, "n_key_value_heads", None) is not None:
        return False
    if getattr(cfg, "use_split_qkv_input", False) or getattr(cfg, "use_attn_in", False):
        return False
    for block in model.blocks:
        if type(block.ln1).__name__ not in _NORMS:
            return False
        if "GroupedQueryAttention" in {c.__name__ for c in type(block.attn).__mro__}:
            return False
        if not all(hasattr(block.attn, n) for n in ("W_Q", "W_K", "W_V", "hook_q")):
            return False
    return True


@dataclass
class AttributionRun:
    """What :func:`attribution_run` returns: the corrupted run's ``logits`` and sender
    ``outputs`` (as :class:`mi_assert.edges.senders.RecordedRun` has them), and ``grads``, the
    mean over the integration steps of ``d sum(metric) / d (receiver input)`` per receiver hook
    name (:func:`mi_assert.edges.receivers.receiver_hook`), float32."""

    logits: Tensor
    outputs: Tensor
    grads: dict[str, Tensor]


def _grad_rows(model: Any, batch: int, n_pos: int, steps: int) -> int:
    """Integration steps one gradient run may stack: all, or as many as fit the memory budget
    (at least one)."""
    cfg = model.cfg
    d_mlp = int(getattr(cfg, "d_mlp", 0) or 0) if not getattr(cfg, "attn_only", False) else 0
    per_pos = cfg.n_layers * (10 * cfg.d_model + 6 * cfg.n_heads * cfg.d_head +
                              3 * cfg.n_heads * n_pos + 3 * d_mlp) + 3 * cfg.d_vocab_out
    itemsize = torch.finfo(cfg.dtype).bits // 8
    device = next(model.parameters()).device
    budget = available_bytes(device) if device.type == "cuda" else GRAD_CPU_BUDGET_BYTES
    return max(1, min(steps, budget // max(batch * n_pos * per_pos * itemsize, 1)))


def attribution_run(model: Any, graph: EdgeGraph, edges: Sequence[Edge], tokens: Tensor,
                    metric: Any, steps: int = 1, clean_embed: Tensor | None = None,
                    ) -> AttributionRun:
    """The corrupted run of ``tokens`` with one backward, without split inputs (module notes
    above); with ``steps > 1`` also the runs from ``embed_corr + (k / steps) (clean_embed -
    embed_corr)``, ``k = 1 .. steps - 1`` (EAP-IG), stacked along the batch as memory allows,
    and ``grads`` is their mean. Needs :func:`fast_path_supported`."""
    batch, n_pos = tokens.shape
    receivers = _hooks(graph, edges)
    embed_corr: Tensor | None = None
    if steps > 1:
        if clean_embed is None:
            raise ValueError("steps > 1 needs clean_embed")
        with torch.no_grad():
            embed_corr = model(tokens, stop_at_layer=0).detach()
    per_run = _grad_rows(model, batch, n_pos, steps)
    total: dict[str, Tensor] = {}
    logits: Tensor | None = None
    outputs: Tensor | None = None
    for first in range(0, steps, per_run):
        ks = list(range(first, min(steps, first + per_run)))
        embed = None
        if embed_corr is not None and clean_embed is not None:
            diff = clean_embed.to(embed_corr.dtype) - embed_corr
            embed = torch.cat([embed_corr + (k / steps) * diff for k in ks])
        run = _one_gradient_run(model, graph, receivers, tokens, metric, len(ks), embed,
                                want_outputs=first == 0)
        if first == 0:
            logits, outputs = run.logits, run.outputs
        total = run.grads if not total else {n: total[n] + run.grads[n] for n in receivers}
    assert logits is not None and outputs is not None
    if steps > 1:
        total = {name: g / steps for name, g in total.items()}
    return AttributionRun(logits=logits, outputs=outputs, grads=total)


def _one_gradient_run(model: Any, graph: EdgeGraph, receivers: Sequence[str], tokens: Tensor,
                      metric: Any, n_steps: int, embed: Tensor | None,
                      want_outputs: bool) -> AttributionRun:
    """One forward of ``n_steps`` stacked copies of ``tokens`` (starting from ``embed`` when
    given) and one backward; ``grads`` summed over the copies, ``logits`` / ``outputs`` those
    of the first copy (``want_outputs``)."""
    batch = tokens.shape[0]
    n_layers = graph.n_layers
    wanted = set(receivers)
    head_layers = sorted({int(n.split(".")[1]) for n in wanted
                          if n.endswith(("_q_input", "_k_input", "_v_input"))})
    grad_names: list[str] = [f"blocks.{layer}.attn.hook_{x}" for layer in head_layers
                             for x in "qkv"]
    grad_names += sorted(n for n in wanted if n.endswith(("hook_mlp_in", "hook_resid_post")))
    keep_names: list[str] = []
    for layer in head_layers:
        if type(model.blocks[layer].ln1).__name__ != "Identity":
            keep_names += [f"blocks.{layer}.ln1.hook_scale", f"blocks.{layer}.ln1.hook_normalized"]
    if want_outputs:
        keep_names += [f"blocks.{layer}.attn.hook_z" for layer in range(n_layers)]
        if graph.has_mlp:
            keep_names += [f"blocks.{layer}.hook_mlp_out" for layer in range(n_layers)]
        if embed is None:
            keep_names.append("blocks.0.hook_resid_pre")
    captured: dict[str, Tensor] = {}
    kept: dict[str, Tensor] = {}

    def grab(act: Tensor, hook: Any) -> None:
        captured[hook.name] = act

    def keep(act: Tensor, hook: Any) -> None:
        kept[hook.name] = act.detach()

    def start_from(act: Tensor, hook: Any) -> Tensor:
        assert embed is not None
        kept[hook.name] = embed
        return embed.detach().to(act.dtype).requires_grad_(True)

    fwd_hooks: list[tuple[str, Any]] = [] if embed is None else [("blocks.0.hook_resid_pre",
                                                                  start_from)]
    fwd_hooks += [(n, grab) for n in grad_names] + [(n, keep) for n in keep_names]
    rows = tokens if n_steps == 1 else tokens.repeat(n_steps, 1)
    with torch.enable_grad(), split_inputs(model, qkv=False):
        count_forward(int(rows.shape[0]))
        logits = model.run_with_hooks(rows, return_type="logits", fwd_hooks=fwd_hooks)
        missing = sorted(set(grad_names) - set(captured) | set(keep_names) - set(kept))
        if missing:
            raise RuntimeError(f"TransformerLens did not call hooks {missing}")
        value = logits.new_zeros(())
        for step_logits in logits.view(n_steps, batch, *logits.shape[1:]):
            value = value + evaluate_metric(metric, step_logits, batch).sum()
        grads = torch.autograd.grad(value, [captured[n] for n in grad_names], allow_unused=True)
    grad_at = {n: (g if g is not None else torch.zeros_like(captured[n])).detach()
               for n, g in zip(grad_names, grads, strict=True)}
    out: dict[str, Tensor] = {}
    for name in wanted:
        if name.endswith(("hook_mlp_in", "hook_resid_post")):
            out[name] = _sum_steps(grad_at[name].float(), n_steps, batch)
    n_heads = model.cfg.n_heads
    for layer in head_layers:
        g = _head_input_grads(model, layer, [grad_at[f"blocks.{layer}.attn.hook_{x}"]
                                             for x in "qkv"], kept)  # [3 heads, rows, pos, m]
        if n_steps > 1:
            g = g.view(g.shape[0], n_steps, batch, *g.shape[2:]).sum(1)
        for i, x in enumerate("qkv"):
            name = f"blocks.{layer}.hook_{x}_input"
            if name in wanted:  # [batch, pos, head, d_model], a view of the head-major layout
                out[name] = g[i * n_heads:(i + 1) * n_heads].float().permute(1, 2, 0, 3)
    first_outputs = torch.empty(0)
    if want_outputs:
        first_outputs = _sender_outputs(model, graph, kept, batch)
    return AttributionRun(logits=logits.detach()[:batch], outputs=first_outputs, grads=out)


def _sum_steps(grad: Tensor, n_steps: int, batch: int) -> Tensor:
    return grad if n_steps == 1 else grad.view(n_steps, batch, *grad.shape[1:]).sum(0)


def _head_input_grads(model: Any, layer: int, g_qkv: list[Tensor],
                      kept: dict[str, Tensor]) -> Tensor:
    """``d metric / d hook_{q,k,v}_input`` of every head of ``layer``, head-major: ``[3 *
    heads (q heads, k heads, v heads), rows, pos, d_model]``, from the gradients at
    ``hook_q/k/v`` (``[rows, pos, head, d_head]``) through ``W_Q/K/V`` and the transposed
    Jacobian of ln1 at each position (module notes above)."""
    block = model.blocks[layer]
    attn = block.attn
    kind = type(block.ln1).__name__
    centred, weighted = _NORMS[kind]
    g = torch.cat(g_qkv, dim=2)  # [rows, pos, 3 heads, d_head]
    rows, n_pos, n_in, d_head = g.shape
    w = torch.cat([attn.W_Q, attn.W_K, attn.W_V]).detach().to(g.dtype)  # [3h, d_model, d_head]
    if weighted:
        w = w * block.ln1.w.detach().to(g.dtype)[None, :, None]
    flat = g.permute(2, 0, 1, 3).reshape(n_in, rows * n_pos, d_head)
    u = torch.bmm(flat, w.transpose(1, 2))  # [3h, rows * pos, d_model]
    if kind != "Identity":
        xhat = kept[f"blocks.{layer}.ln1.hook_normalized"].reshape(1, rows * n_pos, -1)
        scale = kept[f"blocks.{layer}.ln1.hook_scale"].reshape(1, rows * n_pos, 1)
        if centred:
            u = u - u.mean(-1, keepdim=True)
        u = (u - xhat * (u * xhat).mean(-1, keepdim=True)) / scale
    return u.view(n_in, rows, n_pos, -1)


def _sender_outputs(model: Any, graph: EdgeGraph, kept: dict[str, Tensor],
                    batch: int) -> Tensor:
    """``[n_senders, batch, pos, d_model]`` as :func:`mi_assert.edges.senders.record_run`
    builds them, from the first ``batch`` rows of the kept activations."""
    outputs = [kept["blocks.0.hook_resid_pre"][:batch]]
    for layer in range(graph.n_layers):
        z = kept[f"blocks.{layer}.attn.hook_z"][:batch]
        w_o = model.blocks[layer].attn.W_O.detach()
        outputs += list(torch.einsum("bphd,hdm->hbpm", z, w_o.to(z.dtype)))
        if graph.has_mlp:
            outputs.append(kept[f"blocks.{layer}.hook_mlp_out"][:batch])
    return torch.stack(outputs)


def contract_fast(graph: EdgeGraph, edges: Sequence[Edge], deltas: Tensor,
                  grad_of: dict[str, Tensor]) -> Tensor:
    """:func:`contract` as one batched matrix product per receiver layer: ``[n_edges, batch]``.

    The senders are laid out ``[batch, sender, pos * d_model]`` once; the gradients of a layer's
    receiver hooks (``[batch, pos, head, d_model]`` or ``[batch, pos, d_model]``) are stacked
    ``[batch, receiver, pos * d_model]`` and meet the senders they need (a prefix of the graph's
    sender order) in one product, so the sender differences are read once per layer, not once
    per hook."""
    d = deltas.float()
    n_senders, batch = d.shape[0], d.shape[1]
    # no copy when ``deltas`` is a [sender, batch, ...] view of a batch-major buffer
    flat = d.reshape(n_senders, batch, -1).transpose(0, 1).contiguous()  # [b, s, p*m]
    out = torch.empty(len(edges), batch, device=d.device)
    layout = edge_layout(graph, edges)
    by_layer: dict[int, list[str]] = {}
    for name in layout:
        layer = graph.n_layers if name.endswith("hook_resid_post") else int(name.split(".")[1])
        by_layer.setdefault(layer, []).append(name)
    dev = d.device
    for names in by_layer.values():
        grads = [grad_of[n].float() for n in names]
        grads = [g if g.ndim == 4 else g[:, :, None] for g in grads]  # [b, p, heads, m]
        widths = [g.shape[2] for g in grads]
        stacked = torch.empty(batch, sum(widths), flat.shape[2], dtype=flat.dtype, device=dev)
        offsets: list[int] = []
        offset = 0
        for g, width in zip(grads, widths, strict=True):
            stacked[:, offset:offset + width].view(batch, width, g.shape[1], g.shape[3]).copy_(
                g.transpose(1, 2))
            offsets.append(offset)
            offset += width
        top = max(int(layout[n][1].max()) for n in names) + 1
        table = torch.bmm(flat[:, :top], stacked.transpose(1, 2))  # [b, senders, receivers]
        for name, start in zip(names, offsets, strict=True):
            rows, senders, heads = layout[name]
            out[rows.to(dev)] = table[:, senders.to(dev), (heads + start).to(dev)].T
    return out.cpu()
