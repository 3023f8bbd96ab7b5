"""Seeded repeated-token prompts over several repeat lengths and vocabularies.

Head claims are checked on ``BOS + r + r`` prompts (``r``: ``repeat_len`` random tokens), the
standard prompts of TransformerLens's head detector and ARENA. One *prompt set* per repeat
length; each set draws its own random vocabulary (a ``vocab_fraction`` share of the allowed
ids) and its own tokens from a seed derived from ``(seed, repeat_len)``.

* ``split="fit"`` draws from ``seed`` (what :func:`~mi_assert.heads.discovery.find_heads` uses);
* ``split="heldout"`` draws from ``seed + HELDOUT_OFFSET`` (what every assertion uses), so a
  head picked on fit prompts is confirmed on prompts and vocabularies discovery never saw.

Allowed ids are those valid as input and as output (below ``d_vocab`` and ``d_vocab_out``),
except BOS, the tokenizer's special ids and those declared with ``as_handle(model,
special_token_ids=...)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch import Tensor

from mi_assert.backends.base import ModelHandle
from mi_assert.errors import MiAssertInputError
from mi_assert.prompts import HELDOUT_OFFSET, repeated_tokens

#: default repeat lengths: short to long, so no single look-back distance matches more than one
DEFAULT_REPEAT_LENS: tuple[int, ...] = (8, 16, 24, 32)
Split = Literal["fit", "heldout"]


@dataclass
class PromptRow:
    """One condition of one seed: ``tokens [n_prompts, pos]`` and how they were drawn."""

    label: str
    tokens: Tensor
    repeat_len: int | None
    vocab_size: int


def allowed_vocab(handle: ModelHandle) -> Tensor:
    """Token ids random prompts may use: :meth:`ModelHandle.content_token_ids` (valid as input
    and output, not BOS or another special id)."""
    return handle.content_token_ids()


def fit_repeat_lens(
    handle: ModelHandle, repeat_lens: Sequence[int], explicit: bool
) -> tuple[list[int], str | None]:
    """Repeat lengths whose prompts fit ``n_ctx`` and a note when some were shortened.

    Default lengths that do not fit are shortened to the longest that fits (and merged when
    equal); lengths the user asked for explicitly must fit or a clear error says which do not.
    """
    lens = [int(x) for x in repeat_lens]
    if not lens or any(x < 2 for x in lens):
        raise MiAssertInputError(f"repeat_lens must be integers >= 2; got {list(repeat_lens)}")
    n_extra = 1 if handle.bos_token_id is not None else 0
    longest = (handle.n_ctx - n_extra) // 2
    if longest < 2:
        raise MiAssertInputError(
            f"model context n_ctx={handle.n_ctx} cannot hold even a repeat length of 2 "
            f"({2 * 2 + n_extra} tokens); head claims need repeated sequences"
        )
    too_long = [x for x in lens if 2 * x + n_extra > handle.n_ctx]
    if not too_long:
        return lens, None
    if explicit:
        raise MiAssertInputError(
            f"repeat length(s) {too_long} need {2 * max(too_long) + n_extra} tokens but the model's "
            f"context is n_ctx={handle.n_ctx}; the longest that fits is {longest}"
        )
    fitted = list(dict.fromkeys(min(x, longest) for x in lens))
    return fitted, f"default repeat_lens {list(lens)} shortened to {fitted} to fit n_ctx={handle.n_ctx}"


def _derived_seed(*parts: int) -> int:
    return int(np.random.SeedSequence([int(p) % (2**63) for p in parts]).generate_state(1)[0])


def repeated_prompt_rows(
    handle: ModelHandle,
    seed: int,
    repeat_lens: Sequence[int],
    n_prompts: int,
    split: Split = "heldout",
    vocab_fraction: float = 0.5,
) -> list[PromptRow]:
    """One :class:`PromptRow` per repeat length, drawn from the ``split``'s seed."""
    if split not in ("fit", "heldout"):
        raise MiAssertInputError(f"split {split!r}: allowed 'fit' or 'heldout'")
    if not 0 < vocab_fraction <= 1:
        raise MiAssertInputError(f"vocab_fraction must lie in (0, 1]; got {vocab_fraction}")
    if n_prompts < 2:
        raise MiAssertInputError(f"n_prompts must be >= 2 for a confidence bound; got {n_prompts}")
    base = int(seed) + (HELDOUT_OFFSET if split == "heldout" else 0)
    allowed = allowed_vocab(handle)
    rows = []
    for repeat_len in repeat_lens:
        gen = torch.Generator().manual_seed(_derived_seed(base, repeat_len, 1))
        size = max(1, math.ceil(vocab_fraction * len(allowed)))
        vocab = allowed[torch.randperm(len(allowed), generator=gen)[:size]].sort().values
        tokens = repeated_tokens(n_prompts, repeat_len, handle.d_vocab,
                                 seed=_derived_seed(base, repeat_len, 2),
                                 bos_token_id=handle.bos_token_id, vocab=vocab)
        rows.append(PromptRow(f"repeat_len={repeat_len}", tokens, repeat_len, size))
    return rows


def user_prompt_rows(handle: ModelHandle, prompts: object) -> list[PromptRow]:
    """Rows from prompts the user gave: a token tensor / nested ids, strings, or a PromptSet."""
    clean = getattr(prompts, "clean", prompts)
    tokens = handle.to_tokens(clean)
    if tokens.shape[0] < 2:
        raise MiAssertInputError(
            f"prompts: got {tokens.shape[0]} prompt; need at least 2 for a confidence bound"
        )
    return [PromptRow("given prompts", tokens.cpu(), None, len(torch.unique(tokens)))]
