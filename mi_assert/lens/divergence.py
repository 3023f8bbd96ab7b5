"""Per-position agreement of a lens with the model's output: KL divergence and top-1 match."""

from __future__ import annotations

import torch
from torch import Tensor


def kl_per_position(final_logits: Tensor, lens_logits: Tensor) -> Tensor:
    """``KL(final || lens)`` in nats per position ``[..., pos]`` (the tuned lens's training
    loss): ``Σ_v p_final(v) (log p_final(v) - log p_lens(v))``."""
    return kl_to_target(torch.log_softmax(final_logits.float(), dim=-1), lens_logits)


def kl_to_target(target_logp: Tensor, lens_logits: Tensor) -> Tensor:
    """:func:`kl_per_position` from the target's log-probabilities (computed once for several
    lenses)."""
    pred = torch.log_softmax(lens_logits.float(), dim=-1)
    return (target_logp.exp() * (target_logp - pred)).sum(-1).clamp_min(0.0)


def top1_match(final_logits: Tensor, lens_logits: Tensor) -> Tensor:
    """1.0 where the lens's argmax token equals the model output's, per position."""
    return (final_logits.argmax(-1) == lens_logits.argmax(-1)).float()


def masked_mean(values: Tensor, mask: Tensor) -> Tensor:
    """Mean over positions (last dim) where ``mask`` holds, per prompt."""
    m = mask.to(values.dtype)
    return (values * m).sum(-1) / m.sum(-1).clamp_min(1.0)
