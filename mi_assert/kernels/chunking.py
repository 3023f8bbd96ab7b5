"""Memory estimates for stacked sweeps, and the chunk size that fits.

A sweep stacks V patched variants of a [B, T] batch into one [V*B, T] batch. Its peak memory
grows linearly in V, so we estimate bytes per variant from the shapes, ask the device how much
is free, and split the variants into chunks that fit (each chunk gives exactly the same numbers
as the unchunked sweep: variants never interact).
"""

from __future__ import annotations

import torch

from mi_assert.kernels.functional import FunctionalModel

#: share of the free memory a sweep plans to use (the rest covers allocator slack and caches)
MEMORY_FRACTION = 0.6
#: planning budget on the CPU, where "free memory" is not a useful number
CPU_BUDGET_BYTES = 2 * 1024**3


def bytes_per_variant(fm: FunctionalModel, batch: int, n_pos: int, logit_positions: int,
                      itemsize: int) -> int:
    """Upper estimate of the bytes one stacked variant holds at the sweep's peak.

    Per residual row: the persistent residual buffer (d_model), q/k/v (3*H*d_head), z and its
    transposed copy (2*H*d_head), attention output and layer-norm temporaries (2*d_model), the
    MLP's pre/post activations (2*d_mlp) and output (d_model); under GQA the repeated k and v
    (2*H*d_head), with rotary the rotated q and k (2*H*d_head), with a gated MLP the gate and
    linear branches (2*d_mlp more). Plus the logits at the positions
    the metric reads, twice (logits and a log-softmax temporary inside typical metrics).
    """
    hd = fm.n_heads * fm.d_head
    per_row = fm.d_model + 3 * hd + 2 * hd + 2 * fm.d_model + 2 * fm.d_mlp + fm.d_model
    if fm.kv_heads < fm.n_heads:  # k and v repeated to every query head
        per_row += 2 * hd
    if fm.rotary_dim:  # rotated copies of q and k and their rotate-half temporaries
        per_row += 2 * hd
    if fm.layers and fm.layers[0].W_gate is not None:  # gate, linear and their product
        per_row += 2 * fm.d_mlp
    per_row += fm.n_heads * n_pos  # attention scores if SDPA falls back to the math kernel
    act = batch * n_pos * per_row
    logits = 2 * batch * logit_positions * fm.d_vocab
    return int((act + logits) * itemsize)


def available_bytes(device: torch.device) -> int:
    """Bytes a sweep may plan to use on ``device``."""
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        reusable = torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
        return int((free + reusable) * MEMORY_FRACTION)
    return CPU_BUDGET_BYTES


def variants_per_chunk(per_variant: int, n_variants: int, budget_bytes: int | None,
                       device: torch.device, max_variants: int | None = None) -> int:
    """How many variants to stack at once (at least 1, at most ``n_variants``)."""
    budget = available_bytes(device) if budget_bytes is None else int(budget_bytes)
    fit = max(1, budget // max(per_variant, 1))
    if max_variants is not None:
        fit = min(fit, int(max_variants))
    return max(1, min(fit, n_variants))


def chunks(n_items: int, size: int) -> list[range]:
    """Consecutive index ranges of at most ``size`` covering ``range(n_items)``."""
    return [range(i, min(i + size, n_items)) for i in range(0, n_items, size)]
