"""Run many patched variants of one batch as one stacked batch, sharing the unpatched prefix.

The model is a sequence of sub-steps: ``2*l`` is layer l's attention, ``2*l + 1`` its MLP. A
variant *enters* at the sub-step where its patch first changes the residual stream (a head patch
at layer L enters before MLP L with ``resid_mid`` already patched; a residual patch at layer L
enters before attention L). Before that step it equals the unpatched run, which was computed
once. Variants are sorted by entry step, so at every step the variants that have entered are a
prefix of the buffer and one batched call per sub-step serves all of them: the work is exactly
"for each variant, the layers from its patch onward", in ``2 * n_layers`` large launches instead
of one small launch per variant and layer.

Parallel-block models (GPT-J, GPT-NeoX/Pythia: attention and MLP both read ``resid_pre``) run the
whole layer at step ``2*l``; step ``2*l + 1`` only admits variants (a head patch at layer l
enters there with layer l's MLP already added: it reads ``resid_pre``, which the patch leaves).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from mi_assert.cost import count_forward
from mi_assert.kernels.functional import FunctionalModel

#: fill(step, rows) -> the residual of variants ``rows`` at their entry ``step``: [len, B, T, d]
FillFn = Callable[[int, range], Tensor]


def run_stacked(
    fm: FunctionalModel,
    entry_steps: Sequence[int],
    fill: FillFn,
    batch: int,
    n_pos: int,
    dtype: torch.dtype,
    device: torch.device,
    last_position_only: bool,
) -> Tensor:
    """Final residual of every variant: ``[V, B, d_model]`` (last position) or ``[V, B, T, d]``.

    ``entry_steps`` must be sorted ascending. With ``last_position_only``, the final layer runs
    its attention for the last query only and its MLP on the last position only.
    """
    n = len(entry_steps)
    count_forward(n * batch)
    if any(a > b for a, b in zip(entry_steps, entry_steps[1:], strict=False)):
        raise ValueError("entry_steps must be sorted ascending")
    d = fm.d_model
    n_steps = 2 * fm.n_layers
    buf = torch.empty(n, batch, n_pos, d, dtype=dtype, device=device)
    final: Tensor | None = None  # [n, B, d] once the last layer narrowed to one position
    entered = 0
    for step in range(entry_steps[0], n_steps):
        layer, is_mlp = divmod(step, 2)
        before = entered
        while entered < n and entry_steps[entered] == step:
            entered += 1
        narrow_now = last_position_only and layer == fm.n_layers - 1 and not is_mlp
        if not is_mlp and narrow_now:
            final = torch.empty(n, batch, d, dtype=dtype, device=device)
            if before:
                rows = buf[:before].view(before * batch, n_pos, d)
                final[:before] = _last_layer_last_pos(fm, layer, rows).view(before, batch, d)
            if entered > before:
                new = fill(step, range(before, entered))
                rows = new.reshape(-1, n_pos, d)
                out = _last_layer_last_pos(fm, layer, rows)
                final[before:entered] = out.view(entered - before, batch, d)
        elif not is_mlp:
            if entered > before:
                buf[before:entered] = fill(step, range(before, entered))
            if entered:
                rows = buf[:entered].view(entered * batch, n_pos, d)
                if fm.parallel and fm.has_mlp:
                    mlp = fm.mlp_out(layer, rows)  # reads resid_pre: before the in-place add
                    rows.add_(fm.attn_block_out(layer, rows))
                    rows.add_(mlp)
                else:
                    rows.add_(fm.attn_block_out(layer, rows))
        else:
            if last_position_only and final is None and layer == fm.n_layers - 1:
                # a chunk that starts at the last MLP never passed the narrowing attention step
                final = torch.empty(n, batch, d, dtype=dtype, device=device)
                final[:before] = buf[:before, :, -1]
            if entered > before:
                new = fill(step, range(before, entered))
                if final is not None:
                    final[before:entered] = new[:, :, -1]
                else:
                    buf[before:entered] = new
            target = final if final is not None else buf
            if fm.has_mlp and entered and not fm.parallel:
                active = target[:entered]
                active.add_(fm.mlp_out(layer, active))
    if last_position_only:
        assert final is not None
        return final
    return buf


def _last_layer_last_pos(fm: FunctionalModel, layer: int, rows: Tensor) -> Tensor:
    """Residual at the last position after the final layer's attention (``[N, d]``), plus its
    MLP on parallel-block models (there the MLP reads ``resid_pre``, not this sum)."""
    out = rows[:, -1] + fm.attn_block_out_last(layer, rows)
    if fm.parallel and fm.has_mlp:
        out = out + fm.mlp_out(layer, rows[:, -1])
    return out
