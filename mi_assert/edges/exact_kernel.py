"""Exact edge patching on the functional forward (:mod:`mi_assert.kernels`), many edges per pass.

Patching edge ``s -> r`` changes nothing before ``r``'s node, and there only that node's output:

* ``r`` is head h's q, k or v input in layer l: only head h's output changes. Its new output is
  recomputed alone, from ``ln1(resid_pre_l + delta_s)`` projected on head h's query, key or
  value weights and the corrupted run's other two; the variant's ``resid_mid_l`` is the
  corrupted one plus the head's new minus its old output, and it enters the stacked run before
  MLP l (:func:`mi_assert.kernels.stacked.run_stacked`), like a head-output patch. On
  parallel-block models it enters after layer l (the MLP reads ``resid_pre``, which the patch
  leaves).
* ``r`` is MLP l's input: the variant's ``resid_post_l`` is the corrupted one with MLP l's output
  recomputed from ``input + delta_s``; it enters before layer l + 1 (after the last layer it is
  the final residual).
* ``r`` is the logits: the final residual plus ``delta_s``; no layer runs.

So each edge costs one head or MLP plus the layers after its receiver, run for all edges of a
chunk as one batch, with the final layer at the metric's position only when the metric reads
one position (later positions are dropped: causal attention). The numbers equal the
hook-based engine (:mod:`mi_assert.edges.exact`) to float32 rounding.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from mi_assert.edges.graph import Edge, EdgeGraph, Node
from mi_assert.kernels.chunking import available_bytes, bytes_per_variant, chunks
from mi_assert.kernels.functional import FunctionalModel, run_and_cache
from mi_assert.kernels.metric_reader import MetricReader
from mi_assert.kernels.stacked import run_stacked

#: planning budget for one stacked chunk on the CPU. On the benchmark model
#: (tests/edges/bench_edge_sweep_cpu.py) budgets from 16 MiB to 1 GiB ran within 15% of each
#: other, 16 MiB fastest; 48 MiB still stacks several variants per pass on larger models, where
#: each pass's Python overhead is shared by fewer variants
CPU_CHUNK_BYTES = 48 << 20


@dataclass
class _CorruptedRun:
    """The corrupted run's residuals and per-head pieces, as the variants read them."""

    resid_pre: list[Tensor]  # [B, T, d] entering layer l
    #: where a head-input variant enters: ``resid_mid`` (parallel blocks: ``resid_post``)
    head_entry: list[Tensor]
    final: Tensor  # [B, T, d] the last block's resid_post
    z: list[Tensor]  # [B, T, H, d_head]
    qkv: dict[int, tuple[Tensor, Tensor, Tensor]]  # per layer, filled on first use
    mlp: dict[int, Tensor]  # per layer, MLP output, filled on first use

    def layer_qkv(self, fm: FunctionalModel, layer: int) -> tuple[Tensor, Tensor, Tensor]:
        if layer not in self.qkv:
            self.qkv[layer] = fm.qkv(layer, self.resid_pre[layer])
        return self.qkv[layer]

    def mlp_in(self, fm: FunctionalModel, layer: int) -> Tensor:
        """What MLP ``layer`` reads in the corrupted run: ``resid_mid`` (parallel: ``resid_pre``)."""
        return self.resid_pre[layer] if fm.parallel else self.head_entry[layer]

    def resid_post(self, fm: FunctionalModel, layer: int) -> Tensor:
        return self.final if layer + 1 == fm.n_layers else self.resid_pre[layer + 1]

    def mlp_out(self, fm: FunctionalModel, layer: int) -> Tensor:
        if layer not in self.mlp:
            self.mlp[layer] = fm.mlp_out(layer, self.mlp_in(fm, layer))
        return self.mlp[layer]


def _corrupted_run(fm: FunctionalModel, tokens: Tensor) -> _CorruptedRun:
    cache = run_and_cache(fm, tokens, fm.n_layers, want_resid_pre=True, want_resid_mid=True,
                          want_z=True)
    last = fm.n_layers - 1
    final = cache.resid_mid[last]  # on parallel blocks run_and_cache's "resid_mid" is resid_post
    if fm.has_mlp and not fm.parallel:
        final = final + fm.mlp_out(last, final)
    return _CorruptedRun(resid_pre=cache.resid_pre, head_entry=cache.resid_mid, final=final,
                         z=cache.z, qkv={}, mlp={})


def _head_output(fm: FunctionalModel, layer: int, head: int, inp: str, x: Tensor,
                 corrupted: _CorruptedRun) -> Tensor:
    """Head ``head``'s output ``[n, B, T, d]`` when its ``inp`` input is ``x`` ``[n, B, T, d]``
    and its other two inputs are the corrupted residual."""
    w = fm.layers[layer]
    n, batch, n_pos, d = x.shape
    dh, n_heads, kv = fm.d_head, fm.n_heads, fm.kv_heads
    group = head // (n_heads // kv)  # the key/value head serving this query head
    start = {"q": head * dh, "k": (n_heads + group) * dh, "v": (n_heads + kv + group) * dh}[inp]
    h = fm.norm(x.reshape(n * batch, n_pos, d), w.ln1)
    proj = torch.addmm(w.b_qkv[start:start + dh], h.reshape(-1, d), w.W_qkv[:, start:start + dh])
    proj = proj.view(n * batch, 1, n_pos, dh)
    if w.rotary is not None and inp != "v":
        proj = fm.rotate(proj, w.rotary)
    q_c, k_c, v_c = corrupted.layer_qkv(fm, layer)  # [B, H, T, dh], [B, KV, T, dh] x 2
    parts = {"q": q_c[:, head:head + 1], "k": k_c[:, group:group + 1],
             "v": v_c[:, group:group + 1]}

    def take(name: str) -> Tensor:
        if name == inp:
            return proj
        return parts[name][None].expand(n, -1, -1, -1, -1).reshape(n * batch, 1, n_pos, dh)

    z = F.scaled_dot_product_attention(take("q"), take("k"), take("v"), is_causal=True,
                                       scale=1.0 / fm.attn_scale)  # [nB, 1, T, dh]
    out = z.reshape(-1, dh) @ w.W_O[head]
    return out.view(n, batch, n_pos, d)


class _Variants:
    """One chunk of edges, sorted by the step where each enters the stacked run."""

    def __init__(self, fm: FunctionalModel, graph: EdgeGraph, edges: Sequence[Edge],
                 deltas: Tensor, corrupted: _CorruptedRun) -> None:
        self.fm, self.graph, self.edges = fm, graph, edges
        self.deltas, self.corrupted = deltas, corrupted

    def fill(self, step: int, idx: range) -> Tensor:
        """Residuals ``[len(idx), B, T, d]`` of variants ``idx`` at their entry ``step``."""
        fm, corrupted = self.fm, self.corrupted
        out = torch.empty(len(idx), *corrupted.final.shape, dtype=corrupted.final.dtype,
                          device=corrupted.final.device)
        groups: dict[tuple[Node, str | None], list[int]] = {}
        for j, i in enumerate(idx):
            edge = self.edges[i]
            groups.setdefault((edge.receiver, edge.input), []).append(j)
        for (node, inp), rows in groups.items():
            senders = torch.tensor([self.graph.sender_index(self.edges[idx[j]].sender)
                                    for j in rows], device=self.deltas.device)
            layer = node.layer
            assert layer is not None
            if node.kind == "head":
                assert inp is not None and node.head is not None
                x = corrupted.resid_pre[layer][None] + self.deltas[senders]
                new = _head_output(fm, layer, node.head, inp, x, corrupted)
                old = corrupted.z[layer][:, :, node.head] @ fm.layers[layer].W_O[node.head]
                out[rows] = corrupted.head_entry[layer][None] + (new - old[None])
            else:
                out[rows] = self.mlp_variant(layer, senders)
        return out

    def mlp_variant(self, layer: int, senders: Tensor, position: int | None = None) -> Tensor:
        """``resid_post`` of ``layer`` with MLP ``layer`` fed its corrupted input plus each
        sender's difference: ``[len(senders), B, T, d]`` (at ``position``: ``[n, B, d]``)."""
        fm, corrupted = self.fm, self.corrupted
        x = corrupted.mlp_in(fm, layer)[None] + self.deltas[senders]
        if fm.parallel:
            without_mlp = corrupted.resid_post(fm, layer) - corrupted.mlp_out(fm, layer)
        else:
            without_mlp = corrupted.head_entry[layer]  # resid_mid: what the MLP's output joins
        if position is not None:
            return without_mlp[:, position][None] + fm.mlp_out(layer, x[:, :, position])
        return without_mlp[None] + fm.mlp_out(layer, x)


def kernel_exact_edge_effects(fm: FunctionalModel, graph: EdgeGraph, edges: Sequence[Edge],
                              deltas: Tensor, corrupted_tokens: Tensor, metric: object,
                              budget_bytes: int | None = None,
                              max_rows: int | None = None) -> Tensor:
    """``metric(edge patched) - metric(corrupted)`` per edge and prompt: ``[n_edges, batch]``.

    ``deltas``: ``[n_senders, batch, pos, d_model]`` clean minus corrupted sender outputs
    (aligned with ``graph.senders``); ``budget_bytes``: activations one stacked chunk may hold
    (default :data:`CPU_CHUNK_BYTES` on the CPU, 60% of the free memory on a GPU);
    ``max_rows``: most prompt rows (variants x batch) per stacked pass, overriding the budget.
    """
    with torch.no_grad():
        return _effects(fm, graph, edges, deltas, corrupted_tokens, metric, budget_bytes,
                        max_rows)


def _effects(fm: FunctionalModel, graph: EdgeGraph, edges: Sequence[Edge], deltas: Tensor,
             corrupted_tokens: Tensor, metric: object, budget_bytes: int | None,
             max_rows: int | None) -> Tensor:
    reader = MetricReader(metric, corrupted_tokens.shape[1])
    n_keep = reader.n_keep or corrupted_tokens.shape[1]
    tokens = corrupted_tokens[:, :n_keep]
    deltas = deltas[:, :, :n_keep].to(fm.W_E.dtype)
    batch = tokens.shape[0]
    corrupted = _corrupted_run(fm, tokens)
    last_only = reader.position is not None
    position = reader.position

    def read(final: Tensor) -> Tensor:
        """Metric ``[n, B]`` of final residuals ``[n, B, d]`` (at the position) or ``[n, B, T, d]``."""
        logits = fm.logits(final)
        return torch.stack([reader(logits[j]) for j in range(logits.shape[0])]).float()

    base_final = corrupted.final[:, position] if position is not None else corrupted.final
    base = read(base_final[None])[0]
    out = torch.empty(len(edges), batch)
    stacked: list[tuple[int, int]] = []  # (entry step, edge index)
    direct: list[int] = []
    n_layers = fm.n_layers
    for i, edge in enumerate(edges):
        node = edge.receiver
        if node.kind == "head":
            assert node.layer is not None
            stacked.append((2 * node.layer + 1, i))
        elif node.kind == "mlp" and node.layer is not None and node.layer + 1 < n_layers:
            stacked.append((2 * node.layer + 2, i))
        else:
            direct.append(i)
    variants = _Variants(fm, graph, edges, deltas, corrupted)
    if direct:
        out[direct] = (_direct_effects(variants, [edges[i] for i in direct], position, read)
                       - base[None]).cpu()
    stacked.sort()
    if not stacked:
        return out
    per_variant = bytes_per_variant(fm, batch, n_keep, 1 if last_only else n_keep,
                                    fm.W_E.element_size())
    device = tokens.device
    if budget_bytes is None:
        budget_bytes = _default_budget(device)
    size = budget_bytes // max(per_variant, 1) if max_rows is None else max_rows // batch
    size = max(1, min(len(stacked), size))
    for part in chunks(len(stacked), size):
        order = [stacked[j][1] for j in part]
        chunk = _Variants(fm, graph, [edges[i] for i in order], deltas, corrupted)
        final = run_stacked(fm, [stacked[j][0] for j in part], chunk.fill, batch, n_keep,
                            fm.W_E.dtype, device, last_only)
        out[order] = (read(final) - base[None]).cpu()
    return out


def _default_budget(device: torch.device) -> int:
    if device.type == "cuda":
        return available_bytes(device)
    return CPU_CHUNK_BYTES


def _direct_effects(variants: _Variants, edges: Sequence[Edge], position: int | None,
                    read: Callable[[Tensor], Tensor]) -> Tensor:
    """Edges into the logits and into the last MLP: their final residuals, read directly."""
    fm, corrupted, graph = variants.fm, variants.corrupted, variants.graph
    device = variants.deltas.device
    into_logits = [j for j, e in enumerate(edges) if e.receiver.kind == "logits"]
    into_mlp = [j for j, e in enumerate(edges) if e.receiver.kind != "logits"]
    finals = torch.empty(len(edges), *corrupted.final.shape[:1],
                         *(corrupted.final.shape[1:] if position is None else
                           corrupted.final.shape[2:]),
                         dtype=corrupted.final.dtype, device=device)
    for rows, kind in ((into_logits, "logits"), (into_mlp, "mlp")):
        if not rows:
            continue
        senders = torch.tensor([graph.sender_index(edges[j].sender) for j in rows], device=device)
        if kind == "logits":
            final = corrupted.final[None] + variants.deltas[senders]
            finals[rows] = final[:, :, position] if position is not None else final
        else:
            finals[rows] = variants.mlp_variant(fm.n_layers - 1, senders, position)
    return read(finals)
