"""One recorded forward pass: every sender's output, and the residuals a sweep restarts from."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from mi_assert.cost import count_forward
from mi_assert.edges.graph import EdgeGraph


@dataclass
class RecordedRun:
    """What one run of ``tokens`` leaves for the edge engines.

    ``outputs``: ``[n_senders, batch, pos, d_model]`` aligned with ``graph.senders``: ``embed``
    = ``blocks.0.hook_resid_pre`` (token + position embedding, whatever the model adds there),
    head ``L{l}H{h}`` = its ``hook_z`` times its ``W_O`` (what it adds to the residual, without
    the shared bias ``b_O``), ``mlp{l}`` = ``hook_mlp_out``. ``resid_pre[l]``: ``[batch, pos,
    d_model]`` entering layer l; ``final_resid``: the last block's ``hook_resid_post``.
    """

    logits: Tensor
    outputs: Tensor
    resid_pre: list[Tensor]
    final_resid: Tensor


@torch.no_grad()
def record_run(model: Any, graph: EdgeGraph, tokens: Tensor) -> RecordedRun:
    """Run ``tokens`` once (no grad) and keep what :class:`RecordedRun` lists."""
    n_layers = graph.n_layers
    names = {f"blocks.{layer}.hook_resid_pre" for layer in range(n_layers)}
    names |= {f"blocks.{layer}.attn.hook_z" for layer in range(n_layers)}
    names.add(f"blocks.{n_layers - 1}.hook_resid_post")
    if graph.has_mlp:
        names |= {f"blocks.{layer}.hook_mlp_out" for layer in range(n_layers)}
    cache: dict[str, Tensor] = {}

    def keep(act: Tensor, hook: Any) -> None:
        cache[hook.name] = act.detach()

    count_forward(int(tokens.shape[0]))
    logits = model.run_with_hooks(tokens, return_type="logits",
                                  fwd_hooks=[(name, keep) for name in sorted(names)])
    missing = sorted(names - set(cache))
    if missing:
        raise RuntimeError(f"TransformerLens did not call hooks {missing}")
    outputs = [cache["blocks.0.hook_resid_pre"]]
    for layer in range(n_layers):
        z = cache[f"blocks.{layer}.attn.hook_z"]  # [batch, pos, head, d_head]
        w_o = model.blocks[layer].attn.W_O  # [head, d_head, d_model]
        per_head = torch.einsum("bphd,hdm->hbpm", z, w_o.to(z.dtype))
        outputs += list(per_head)
        if graph.has_mlp:
            outputs.append(cache[f"blocks.{layer}.hook_mlp_out"])
    return RecordedRun(
        logits=logits.detach(),
        outputs=torch.stack(outputs),
        resid_pre=[cache[f"blocks.{layer}.hook_resid_pre"] for layer in range(n_layers)],
        final_resid=cache[f"blocks.{n_layers - 1}.hook_resid_post"],
    )
