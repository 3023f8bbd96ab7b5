"""Exact edge patching, many edges per forward pass.

Patching edge ``s -> r`` (denoising): run the corrupted prompts, but give receiver input ``r``
the value ``x_corr + (out_s_clean - out_s_corr)``; every other input is computed as usual, so
the change flows on from ``r`` through the rest of the model. The score per prompt is
``metric(patched) - metric(corrupted)``.

Before the receiver's layer a patched run equals the corrupted one, so every variant whose
receiver sits in layer l starts at layer l from the recorded corrupted residual
(``HookedTransformer.forward(start_at_layer=l)``), all of them stacked along the batch axis;
edges into the logits need no forward pass at all (the final residual plus the sender's
difference, unembedded). Stacks are chunked to a memory budget; variants never interact, so
chunking does not change the numbers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

from mi_assert.edges.graph import Edge, EdgeGraph
from mi_assert.edges.readout import MetricReadout
from mi_assert.edges.receivers import edge_layout, receiver_layer
from mi_assert.edges.senders import RecordedRun
from mi_assert.edges.tl_model import split_inputs
from mi_assert.kernels.chunking import available_bytes, chunks

#: TL hook names of per-head receiver inputs (``blocks.L.hook_q_input`` ...)
_HEAD_INPUT_HOOKS = ("hook_q_input", "hook_k_input", "hook_v_input")

#: planning budget for one stacked chunk on the CPU (activations of the rows in flight): the
#: per-head split inputs make the receivers' layer memory-bound, and chunks that stay in the
#: CPU caches ran 1.5-2x faster than one large stack (tests/edges/bench_edge_sweep_cpu.py)
CPU_BUDGET_BYTES = 32 << 20


def rows_per_forward(model: Any, batch: int, n_pos: int, full_logits: bool,
                     max_batch: int | None) -> int:
    """Prompt rows one stacked forward may hold: ``max_batch``, or a memory estimate against
    :data:`CPU_BUDGET_BYTES` on the CPU and 60% of the free memory on a GPU.

    Per row and position, with split inputs on: three per-head copies of the residual and their
    layer norms (6 × heads × d_model), q/k/v/z (4 × heads × d_head), scores and pattern
    (3 × heads × pos), the MLP's hidden activations (2 × d_mlp), a few residual-sized
    temporaries, and the logits the metric reads (twice: a log-softmax temporary).
    """
    if max_batch is not None:
        return int(max_batch)
    cfg = model.cfg
    d_mlp = int(getattr(cfg, "d_mlp", 0) or 0) if not getattr(cfg, "attn_only", False) else 0
    per_pos = (6 * cfg.n_heads * cfg.d_model + 4 * cfg.n_heads * cfg.d_head +
               3 * cfg.n_heads * n_pos + 2 * d_mlp + 6 * cfg.d_model)
    per_row = n_pos * per_pos + 2 * cfg.d_vocab_out * (n_pos if full_logits else 1)
    itemsize = torch.finfo(cfg.dtype).bits // 8 if cfg.dtype.is_floating_point else 4
    device = next(model.parameters()).device
    budget = available_bytes(device) if device.type == "cuda" else CPU_BUDGET_BYTES
    return max(batch, budget // max(per_row * itemsize, 1))


def _adder(deltas: Tensor, sender_idx: Tensor, variant_idx: Tensor, head_idx: Tensor | None,
           n_var: int, fired: set[str]) -> Callable[[Tensor, Any], Tensor]:
    """TL hook adding ``deltas[sender_idx[i]]`` ([batch, pos, d_model]) to variant
    ``variant_idx[i]``'s slice of the hooked input (at head ``head_idx[i]`` for head inputs)."""

    def hook(act: Tensor, hook: Any) -> Tensor:
        fired.add(hook.name)
        # TransformerLens hands each split input (and hook_mlp_in) over as its own fresh copy,
        # so adding in place is safe; an expanded view (shared memory) is copied first
        out = act if act.is_contiguous() else act.contiguous()
        stacked = out.view(n_var, act.shape[0] // n_var, *act.shape[1:])
        add = deltas[sender_idx].to(act.dtype)  # [n, batch, pos, d_model]
        if head_idx is None:
            stacked[variant_idx] += add
        else:  # [V, batch, pos, head, d_model]: (variant, head) pairs are distinct
            stacked[variant_idx, :, :, head_idx] += add
        return out

    return hook


def _patched_runs(model: Any, graph: EdgeGraph, layer: int, group: Sequence[Edge],
                  deltas: Tensor, corrupted: RecordedRun, readout: MetricReadout) -> Tensor:
    """Metric ``[len(group), batch]`` of each edge of ``group`` (receivers in ``layer``) patched."""
    n_var = len(group)
    device = deltas.device
    by_hook = {name: tuple(t.to(device) for t in parts)
               for name, parts in edge_layout(graph, group).items()}
    if layer == graph.n_layers:  # into the logits: final residual + the sender's difference
        (_, logit_senders, _), = by_hook.values()  # one receiver input: the final residual
        final = corrupted.final_resid[None] + deltas[logit_senders]
        return readout(final.flatten(0, 1))
    fired: set[str] = set()
    hooks = []
    for name, (variants, senders, heads) in by_hook.items():
        head_idx = heads if name.endswith(_HEAD_INPUT_HOOKS) else None
        hooks.append((name, _adder(deltas, senders, variants, head_idx, n_var, fired)))
    resid = corrupted.resid_pre[layer].repeat(n_var, 1, 1)
    # split inputs only in the receivers' layer: later layers read the residual as usual, and
    # splitting them would multiply their layer-norm work by 3 x n_heads for nothing
    with split_inputs(model):
        resid = model.run_with_hooks(resid, start_at_layer=layer, stop_at_layer=layer + 1,
                                     fwd_hooks=hooks)
    if fired != set(by_hook):
        raise RuntimeError(f"TransformerLens did not call hooks {sorted(set(by_hook) - fired)}: "
                           "split inputs (cfg.use_split_qkv_input / use_hook_mlp_in) not active")
    if layer + 1 < graph.n_layers:
        resid = model(resid, start_at_layer=layer + 1, stop_at_layer=graph.n_layers)
    return readout(resid)


@torch.no_grad()
def exact_edge_effects(model: Any, graph: EdgeGraph, edges: Sequence[Edge], deltas: Tensor,
                       corrupted: RecordedRun, readout: MetricReadout, rows: int) -> Tensor:
    """``metric(edge patched) - metric(corrupted)`` per edge and prompt: ``[n_edges, batch]``.

    ``deltas``: ``[n_senders, batch, pos, d_model]`` clean minus corrupted sender outputs;
    ``rows``: most prompt rows per stacked forward. Switches split inputs on for the
    receivers' layer only (:func:`mi_assert.edges.tl_model.split_inputs`).
    """
    batch = corrupted.final_resid.shape[0]
    base = readout(corrupted.final_resid)[0]  # [batch], read exactly as the patched runs are
    out = torch.empty(len(edges), batch)
    by_layer: dict[int, list[int]] = {}
    for i, edge in enumerate(edges):
        by_layer.setdefault(receiver_layer(edge, graph.n_layers), []).append(i)
    per_chunk = max(1, rows // batch)
    for layer in sorted(by_layer):
        indices = by_layer[layer]
        for part in chunks(len(indices), per_chunk):
            group = [edges[indices[i]] for i in part]
            values = _patched_runs(model, graph, layer, group, deltas, corrupted, readout)
            out[[indices[i] for i in part]] = (values - base[None]).float().cpu()
    return out
