"""EAP and EAP-IG on the functional forward (:mod:`mi_assert.kernels.functional`).

The same estimates as :mod:`mi_assert.edges.eap`'s fast path, computed without
TransformerLens's hooks: one clean forward without autograd (the clean sender outputs), and
one corrupted forward with a backward (the corrupted sender outputs and every receiver
gradient); EAP-IG stacks its integration steps along the batch. Later positions than the one
a metric reads are dropped (causal attention) and only that position is unembedded.

Receiver gradients are taken where the forward has one node per receiver: the MLP's input
(a copy of ``resid_mid``, or of ``resid_pre`` on parallel blocks, that only the MLP reads) and
the final residual. A head's q/k/v input gradient comes from the gradient at the fused q/k/v
projection, before rotary, through that head's weights and ln1's transposed Jacobian (notes in
:mod:`mi_assert.edges.eap`). Models whose key/value heads serve several query heads are not
taken: their k/v projection gradient mixes the query heads.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from mi_assert.causal.metrics import evaluate_metric
from mi_assert.cost import count_forward
from mi_assert.edges.graph import Edge, EdgeGraph
from mi_assert.edges.receivers import edge_layout
from mi_assert.kernels.chunking import available_bytes
from mi_assert.kernels.functional import FunctionalModel
from mi_assert.kernels.metric_reader import MetricReader

#: CPU budget for one stacked gradient run's activations (EAP-IG steps per run)
GRAD_CPU_BUDGET_BYTES = 32 << 20


def kernel_attribution_reason(fm: FunctionalModel) -> str | None:
    """Why the functional EAP cannot take ``fm`` (None when it can)."""
    if fm.kv_heads != fm.n_heads:
        return (f"{fm.kv_heads} key/value heads for {fm.n_heads} query heads (the k/v projection "
                "gradient mixes the heads that share it)")
    return None


@dataclass
class KernelAttribution:
    """Clean and corrupted metric per prompt (``[batch]``), the clean-minus-corrupted sender
    outputs ``[n_senders, batch, kept pos, d_model]`` and the mean receiver gradients per TL
    receiver hook name (:func:`mi_assert.edges.receivers.receiver_hook` layout)."""

    clean_per_prompt: Tensor
    corrupted_per_prompt: Tensor
    deltas: Tensor
    grads: dict[str, Tensor]


@dataclass
class _Run:
    """One functional forward: the metric per prompt and stacked step, the sender outputs of
    the first step, and the tensors the receiver gradients are taken at."""

    metric: Tensor  # [rows // batch * batch] per prompt and step (steps major)
    outputs: Tensor | None  # [batch, n_senders, pos, d]
    qkv: list[Tensor]  # per layer [rows, pos, 3 * H * d_head], before rotary
    norm_stats: list[tuple[Tensor, Tensor] | None]  # per layer ln1 (xhat, scale) or None
    mlp_in: list[Tensor]
    final: Tensor


def _norm_with_stats(fm: FunctionalModel, x: Tensor, wb: tuple[Tensor, ...] | None
                     ) -> tuple[Tensor, tuple[Tensor, Tensor] | None]:
    """``fm.norm(x, wb)`` in the same order of operations, plus ``(xhat, scale)``."""
    if not fm.normalize:
        return x, None
    centred = x if fm.rms else x - x.mean(-1, keepdim=True)
    scale = (centred.pow(2).mean(-1, keepdim=True) + fm.eps).sqrt()
    xhat = centred / scale
    if wb is None:
        return xhat, (xhat, scale)
    out = xhat * wb[0] if fm.rms else xhat * wb[0] + wb[1]
    return out, (xhat, scale)


def _attend(fm: FunctionalModel, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
    """z ``[N, Tq, H, d_head]`` from q ``[N, H, Tq, d_head]`` (the last ``Tq`` positions) and k, v
    ``[N, H, T, d_head]`` in TransformerLens's order of
    operations (scores / scale, causal mask to -inf, softmax, pattern @ v). Not SDPA: near-hard
    attention passes its gradient through tiny probabilities, and rounding them as TL does
    keeps the scores equal to the TL-hook path (``tests/edges/test_eap_fast.py``)."""
    n_q, n_k = q.shape[-2], k.shape[-2]  # queries are the last n_q positions
    scores = (q @ k.transpose(-1, -2)) / fm.attn_scale
    mask = torch.ones(n_q, n_k, dtype=torch.bool, device=q.device).tril(n_k - n_q)
    pattern = torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1)
    return (pattern @ v).transpose(1, 2)


def _forward(fm: FunctionalModel, graph: EdgeGraph, embed: Tensor, reader: MetricReader,
             batch: int, want_outputs: bool) -> _Run:
    """Run ``embed`` ``[rows, pos, d]`` (``rows`` a multiple of ``batch``) with autograd on."""
    count_forward(int(embed.shape[0]))
    rows, n_pos, d = embed.shape
    dh, n_heads = fm.d_head, fm.n_heads
    outputs: Tensor | None = None
    if want_outputs:  # [batch, n_senders, pos, d] (the layout the contraction reads), filled
        # sender by sender in graph order
        outputs = embed.new_empty(batch, len(graph.senders), n_pos, d)
        outputs[:, 0] = embed[:batch].detach()
    slot = 1
    qkvs: list[Tensor] = []
    stats: list[tuple[Tensor, Tensor] | None] = []
    mlp_ins: list[Tensor] = []
    x = embed
    # the metric reads the last kept position: the last layer runs its query, output and MLP
    # there only (elsewhere their gradients are zero and their outputs reach nothing it reads)
    narrow = reader.position is not None
    for layer, w in enumerate(fm.layers):
        last = narrow and layer == fm.n_layers - 1
        h, stat = _norm_with_stats(fm, x, w.ln1)
        stats.append(None if stat is None else (stat[0].detach(), stat[1].detach()))
        qkv = torch.addmm(w.b_qkv, h.reshape(-1, d), w.W_qkv).view(rows, n_pos, 3 * n_heads * dh)
        qkvs.append(qkv)
        q, k, v = qkv.view(rows, n_pos, 3, n_heads, dh).permute(2, 0, 3, 1, 4).unbind(0)
        if w.rotary is not None:
            q, k = fm.rotate(q, w.rotary), fm.rotate(k, w.rotary)
        z = _attend(fm, q[:, :, -1:] if last else q, k, v)  # [rows, pos or 1, H, dh]
        n_out = z.shape[1]
        if last:
            x = x[:, -1:]
        if outputs is not None:
            z_heads = z[:batch].detach().permute(2, 0, 1, 3).reshape(n_heads, batch * n_out, dh)
            if last:
                outputs[:, slot:].zero_()
            target = outputs[:, slot:slot + n_heads, -n_out:]
            target.copy_(torch.bmm(z_heads, w.W_O).view(n_heads, batch, n_out, d).transpose(0, 1))
            slot += n_heads
        attn = fm.attn_out(layer, z)
        if fm.has_mlp:
            resid = x if fm.parallel else x + attn
            mlp_in = resid.clone()  # read by the MLP only: its gradient is the MLP input's
            mlp_ins.append(mlp_in)
            mlp = fm.mlp_out(layer, mlp_in)
            if outputs is not None:
                outputs[:, slot, -n_out:] = mlp[:batch].detach()
                slot += 1
            x = x + attn + mlp if fm.parallel else resid + mlp
        else:
            x = x + attn
    final = x  # [rows, 1, d] when narrowed
    at = final[:, -1] if reader.position is not None else final
    logits = fm.logits(at)
    if reader.position is None:  # the metric reads full logits: check what it returns
        values = torch.cat([evaluate_metric(reader.metric, part, batch)
                            for part in logits.split(batch)])
    else:
        values = torch.cat([reader(part) for part in logits.split(batch)])
    return _Run(metric=values, outputs=outputs,
                qkv=qkvs, norm_stats=stats, mlp_in=mlp_ins, final=final)


def _head_input_grads(fm: FunctionalModel, layer: int, g_qkv: Tensor, qkv: Tensor,
                      stat: tuple[Tensor, Tensor] | None) -> Tensor:
    """``d metric / d (q, k, v input)`` of every head of ``layer``: ``[3 * H, rows, pos, d]``
    (q heads, k heads, v heads), from the gradient ``g_qkv`` at the fused projection and its
    value ``qkv`` (both ``[rows, pos, 3 * H * d_head]``) through each head's weights and ln1's
    transposed Jacobian.

    With ``u = w * (W_h g)``, LayerNorm's ``J^T u = (u - mean(u) - xhat mean(u xhat)) / scale``
    (RMSNorm: no ``- mean(u)``). Centring is linear in ``g``, so it is folded into the weights
    (each weight row centred over ``d_model``), and ``1 / scale`` into ``g``. And
    ``mean(u xhat) = g . ((w * xhat) W_h) / d``, where ``(w * xhat) W_h`` is the projection the
    forward already computed, less its biases (``b_qkv`` and ln1's bias through ``W``): so only
    the final ``- xhat mean(u xhat)`` passes over the ``[3H, N, d]`` result."""
    w = fm.layers[layer]
    rows, n_pos, _ = g_qkv.shape
    n_in, dh, d = 3 * fm.n_heads, fm.d_head, fm.d_model
    weights = w.W_qkv.view(d, n_in, dh).permute(1, 2, 0)  # [3H, dh, d]
    if w.ln1 is not None:
        weights = weights * w.ln1[0][None, None, :]
    flat = g_qkv.reshape(rows * n_pos, n_in, dh).transpose(0, 1)  # [3H, N, dh]
    if stat is None:
        return torch.bmm(flat, weights).view(n_in, rows, n_pos, d)
    xhat, scale = stat[0].reshape(rows * n_pos, d), stat[1].reshape(1, rows * n_pos, 1)
    if not fm.rms:
        weights = weights - weights.mean(-1, keepdim=True)
    scaled = flat / scale
    projected = qkv.detach() - w.b_qkv
    if w.ln1 is not None and len(w.ln1) == 2:  # LayerNorm's bias entered the projection too
        projected = projected - w.ln1[1] @ w.W_qkv
    projected = projected.reshape(rows * n_pos, n_in, dh).transpose(0, 1)  # [3H, N, dh]
    along = (scaled * projected).sum(-1, keepdim=True).div_(d)  # mean(u xhat) per head and row
    u = torch.bmm(scaled, weights)  # [3H, N, d]
    u.addcmul_(xhat[None].expand_as(u), along, value=-1.0)
    return u.view(n_in, rows, n_pos, d)


def _gradients(fm: FunctionalModel, graph: EdgeGraph, edges: Sequence[Edge], run: _Run,
               n_steps: int, batch: int) -> dict[str, Tensor]:
    """Receiver gradients of ``run`` summed over its stacked steps, per TL hook name."""
    wanted = set(edge_layout(graph, edges))
    head_layers = sorted({e.receiver.layer for e in edges if e.receiver.kind == "head"
                          and e.receiver.layer is not None})
    mlp_layers = sorted({e.receiver.layer for e in edges if e.receiver.kind == "mlp"
                         and e.receiver.layer is not None})
    into_logits = any(e.receiver.kind == "logits" for e in edges)
    inputs = ([run.qkv[layer] for layer in head_layers] + [run.mlp_in[layer] for layer in mlp_layers]
              + ([run.final] if into_logits else []))
    grads = list(torch.autograd.grad(run.metric.sum(), inputs, allow_unused=True))
    grads = [torch.zeros_like(t) if g is None else g for g, t in zip(grads, inputs, strict=True)]

    n_pos = run.qkv[0].shape[1]

    def summed(g: Tensor) -> Tensor:
        g = g if n_steps == 1 else g.view(n_steps, batch, *g.shape[1:]).sum(0)
        if g.shape[1] == n_pos:
            return g
        full = g.new_zeros(g.shape[0], n_pos, g.shape[2])  # a narrowed last layer: zero before
        full[:, -g.shape[1]:] = g
        return full

    out: dict[str, Tensor] = {}
    n_heads = fm.n_heads
    for layer, g in zip(head_layers, grads, strict=False):
        per_head = _head_input_grads(fm, layer, g, run.qkv[layer], run.norm_stats[layer])
        if n_steps > 1:
            per_head = per_head.view(per_head.shape[0], n_steps, batch,
                                     *per_head.shape[2:]).sum(1)
        for i, x in enumerate("qkv"):
            name = f"blocks.{layer}.hook_{x}_input"
            if name in wanted:  # [batch, pos, head, d_model], a view of the head-major layout
                out[name] = per_head[i * n_heads:(i + 1) * n_heads].permute(1, 2, 0, 3)
    rest = grads[len(head_layers):]
    for layer, g in zip(mlp_layers, rest, strict=False):
        out[f"blocks.{layer}.hook_mlp_in"] = summed(g)
    if into_logits:
        out[f"blocks.{graph.n_layers - 1}.hook_resid_post"] = summed(rest[-1])
    return out


def _steps_per_run(fm: FunctionalModel, batch: int, n_pos: int, steps: int,
                   device: torch.device) -> int:
    """Integration steps one gradient run may stack: all, or what fits the memory budget."""
    per_pos = fm.n_layers * (10 * fm.d_model + 8 * fm.n_heads * fm.d_head +
                             3 * fm.n_heads * n_pos + 3 * fm.d_mlp)
    per_step = batch * n_pos * per_pos * fm.W_E.element_size()
    budget = available_bytes(device) if device.type == "cuda" else GRAD_CPU_BUDGET_BYTES
    return max(1, min(steps, budget // max(per_step, 1)))


def kernel_attribution(fm: FunctionalModel, graph: EdgeGraph, edges: Sequence[Edge],
                       clean: Tensor, corrupted: Tensor, metric: object,
                       steps: int = 1) -> KernelAttribution:
    """Everything EAP (``steps=1``) or EAP-IG (``steps`` integration points) needs, from one
    clean forward and ``steps`` corrupted-to-clean forwards with their backwards (module
    docstring); contract with :func:`mi_assert.edges.eap.contract_fast`."""
    reader = MetricReader(metric, corrupted.shape[1])
    n_keep = reader.n_keep or corrupted.shape[1]
    clean, corrupted = clean[:, :n_keep], corrupted[:, :n_keep]
    batch = corrupted.shape[0]
    with torch.no_grad():
        clean_run = _forward(fm, graph, fm.embed(clean), reader, batch, want_outputs=True)
        embed_corr = fm.embed(corrupted)
    assert clean_run.outputs is not None
    diff = clean_run.outputs[:, 0] - embed_corr
    per_run = _steps_per_run(fm, batch, n_keep, steps, corrupted.device)
    total: dict[str, Tensor] = {}
    corrupted_pp: Tensor | None = None
    deltas: Tensor | None = None
    for first in range(0, steps, per_run):
        ks = list(range(first, min(steps, first + per_run)))
        embed = torch.cat([embed_corr + (k / steps) * diff for k in ks])  # k = 0: corrupted
        with torch.enable_grad():
            run = _forward(fm, graph, embed.detach().requires_grad_(True), reader, batch,
                           want_outputs=first == 0)
            grads = _gradients(fm, graph, edges, run, len(ks), batch)
        if first == 0:
            assert run.outputs is not None
            corrupted_pp = run.metric[:batch].detach()
            # the clean buffer is not read again; [n_senders, batch, pos, d] as a view
            deltas = clean_run.outputs.sub_(run.outputs).transpose(0, 1)
        total = grads if not total else {n: total[n] + grads[n] for n in total}
    assert corrupted_pp is not None and deltas is not None
    if steps > 1:
        total = {name: g / steps for name, g in total.items()}
    return KernelAttribution(clean_per_prompt=clean_run.metric.detach().float().cpu(),
                             corrupted_per_prompt=corrupted_pp.float().cpu(),
                             deltas=deltas, grads=total)
