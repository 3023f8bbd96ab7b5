"""The work a sweep cannot avoid, in FLOPs, and device timing helpers.

Floor of the all-heads output sweep (issue text): for each patched layer L, the layers from L
onward, once per head, the unpatched prefix shared, logits only where the metric reads them.
Divided by the measured fp32 matmul rate, it is the time no exact implementation can beat.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import torch


def layer_flops(d_model: int, n_heads: int, d_head: int, d_mlp: int, batch: int, n_pos: int,
                n_kv_heads: int | None = None, gated: bool = False) -> float:
    """Matmul FLOPs of one transformer block on ``[batch, n_pos]`` (causal attention pairs);
    ``n_kv_heads`` key/value heads under GQA, three MLP matrices when ``gated``."""
    hd = n_heads * d_head
    kv = (n_heads if n_kv_heads is None else n_kv_heads) * d_head
    mlp = (3 if gated else 2) * d_model * d_mlp
    per_token = 2 * (d_model * hd + 2 * d_model * kv + hd * d_model + mlp)
    pairs = n_pos * (n_pos + 1) / 2
    attention = batch * n_heads * 2 * 2 * pairs * d_head
    return batch * n_pos * per_token + attention


def head_sweep_floor_flops(n_layers: int, d_model: int, n_heads: int, d_head: int, d_mlp: int,
                           d_vocab: int, batch: int, n_pos: int, n_kv_heads: int | None = None,
                           gated: bool = False) -> float:
    """FLOPs of the all-heads output sweep's floor (see the module docstring)."""
    per_layer = layer_flops(d_model, n_heads, d_head, d_mlp, batch, n_pos, n_kv_heads, gated)
    layers_run = sum(n_layers - layer for layer in range(n_layers)) * n_heads
    logits = n_layers * n_heads * batch * 2 * d_model * d_vocab
    return layers_run * per_layer + logits


def splice_needed_flops(n_layers: int, d_model: int, n_heads: int, d_head: int, d_mlp: int,
                        d_vocab: int, d_sae: int, batch: int, n_pos: int, layer: int
                        ) -> dict[str, float]:
    """FLOPs the CE-loss splice at ``blocks.{layer}.hook_resid_pre`` cannot avoid, by part:
    layers before the hook once, the rest three times (clean | SAE | zero), the unembedding at
    the predicting positions three times, the SAE's two GEMMs once; ``"total"`` sums them."""
    per_layer = layer_flops(d_model, n_heads, d_head, d_mlp, batch, n_pos)
    parts = {
        "prefix": layer * per_layer,
        "suffix": 3 * (n_layers - layer) * per_layer,
        "unembed": 3 * 2 * batch * (n_pos - 1) * d_model * d_vocab,
        "sae": 2 * 2 * batch * n_pos * d_model * d_sae,
    }
    return {**parts, "total": sum(parts.values())}


def synchronize(device: Any) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def time_calls(fn: Callable[[], Any], device: Any, warmup: int = 1, repeat: int = 5) -> list[float]:
    """Wall seconds of each of ``repeat`` calls, the device synchronised before and after each."""
    for _ in range(warmup):
        fn()
    synchronize(device)
    times: list[float] = []
    for _ in range(repeat):
        synchronize(device)
        start = time.perf_counter()
        fn()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return times


def median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else 0.5 * (ordered[mid - 1] + ordered[mid])
