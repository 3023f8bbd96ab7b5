"""Prompt sets with seeded ``fit`` and ``heldout`` splits.

Discovery (``find_heads``, sweeps) runs on ``fit``; claims are asserted on ``heldout``, drawn
from a seed discovery never saw (``heldout`` uses ``seed + HELDOUT_OFFSET``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from mi_assert.errors import MiAssertInputError
from mi_assert.shapes import Tokens

HELDOUT_OFFSET = 1_000_003


@dataclass
class PromptSet:
    """Aligned token batches: ``clean`` and (optionally) ``corrupted``, plus answer ids.

    All tensors are ``[batch, pos]`` (answers ``[batch]``); ``meta`` records the generator
    and its settings so reports can say what the prompts were.
    """

    clean: Tensor
    corrupted: Tensor | None = None
    correct: Tensor | None = None
    wrong: Tensor | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_aligned(self.clean, self.corrupted)

    def __len__(self) -> int:
        return int(self.clean.shape[0])

    def to(self, device: torch.device | str) -> PromptSet:
        def move(t: Tensor | None) -> Tensor | None:
            return t.to(device) if t is not None else None

        return PromptSet(self.clean.to(device), move(self.corrupted), move(self.correct),
                         move(self.wrong), dict(self.meta))


@dataclass
class SplitPrompts:
    """A ``fit`` split for discovery and a ``heldout`` split for verdicts."""

    fit: PromptSet
    heldout: PromptSet
    seed: int


def check_aligned(clean: Tensor, corrupted: Tensor | None) -> None:
    """Clean and corrupted prompts must match token for token in shape."""
    if corrupted is None:
        return
    if clean.ndim != 2 or corrupted.ndim != 2:
        raise MiAssertInputError(
            f"clean and corrupted must be token batches [batch, pos]; got shapes "
            f"{tuple(clean.shape)} and {tuple(corrupted.shape)}"
        )
    if clean.shape[0] != corrupted.shape[0]:
        raise MiAssertInputError(
            f"clean has {clean.shape[0]} prompts but corrupted has {corrupted.shape[0]}; "
            "patching pairs prompts one to one, so the batch sizes must match"
        )
    if clean.shape[1] != corrupted.shape[1]:
        raise MiAssertInputError(
            f"clean prompts have {clean.shape[1]} tokens but corrupted have {corrupted.shape[1]}; "
            "patching swaps activations position by position, so clean and corrupted must be "
            "aligned token by token (same length). Use templates whose names/objects are single "
            "tokens, or pad both to the same length"
        )


def repeated_tokens(
    n_prompts: int,
    repeat_len: int,
    d_vocab: int,
    seed: int,
    bos_token_id: int | None = None,
    vocab: Tensor | None = None,
    n_repeats: int = 2,
) -> Tokens:
    """``[BOS] + r + r (+ r ...)``: ``n_prompts`` random sequences of ``repeat_len`` tokens.

    Tokens are drawn uniformly from ``vocab`` (default: every id except BOS) with a seeded
    generator, so the same seed gives the same prompts on any machine.
    """
    if repeat_len < 1 or n_prompts < 1:
        raise MiAssertInputError(f"need repeat_len >= 1 and n_prompts >= 1; got {repeat_len}, {n_prompts}")
    if isinstance(n_repeats, bool) or not isinstance(n_repeats, int) or n_repeats < 1:
        raise MiAssertInputError(f"n_repeats must be an int >= 1 (2: r + r); got {n_repeats!r}")
    gen = torch.Generator().manual_seed(int(seed))
    if vocab is None:
        vocab = torch.tensor([t for t in range(d_vocab) if t != bos_token_id], dtype=torch.long)
    _check_vocab(vocab)
    idx = torch.randint(0, len(vocab), (n_prompts, repeat_len), generator=gen)
    seq = vocab[idx]
    parts = [seq] * n_repeats
    if bos_token_id is not None:
        parts = [torch.full((n_prompts, 1), bos_token_id, dtype=torch.long), *parts]
    return torch.cat(parts, dim=1)


def _check_vocab(vocab: Tensor) -> None:
    """The ids random prompts draw from: a non-empty 1-D integer tensor."""
    if not isinstance(vocab, Tensor) or vocab.ndim != 1 or vocab.is_floating_point() or vocab.numel() == 0:
        shape = tuple(vocab.shape) if isinstance(vocab, Tensor) else type(vocab).__name__
        raise MiAssertInputError(
            f"vocab must be a non-empty 1-D integer tensor of token ids to draw from; got {shape}"
            " (with d_vocab and no vocab, every id except BOS is drawn)"
        )
