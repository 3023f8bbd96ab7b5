"""Prompt transforms for invariance and directional claims: callables ``PromptSet -> PromptSet``.

A transform maps every tensor a metric reads: the tokens (``clean`` and, when present,
``corrupted``) and the answer ids (``correct``, ``wrong``), so a metric named by string
(``"logit_diff"``) is rebuilt from the transformed answers. Each returns a new
:class:`~mi_assert.prompts.PromptSet` whose ``meta`` lists the transforms applied under
``"transforms"``; the inputs are never changed in place.

* :func:`swap_answers`: ``correct`` and ``wrong`` trade places; the prompt is unchanged, so the
  logit difference flips sign on any model.
* :func:`swap_io_and_s`: IOI prompts with the two names traded in the prompt and in the answers
  (the name that occurs once is still the answer).
* :func:`relabel_tokens`: one random permutation of the content vocabulary applied to every
  token and answer; a circuit that reads token identity only through matching (induction)
  behaves the same.
* :func:`shuffle_second_half`: the repeat of a repeated-token prompt is shuffled, so the last
  token no longer continues the earlier sequence; an induction answer is lost.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import torch
from torch import Tensor

from mi_assert.backends import as_handle
from mi_assert.errors import MiAssertInputError
from mi_assert.prompts import PromptSet

#: what a transform is
Transform = Callable[[PromptSet], PromptSet]


def _named(transform: Transform, name: str) -> Transform:
    transform.__name__ = transform.__qualname__ = name
    return transform


def _with_meta(prompts: PromptSet, name: str, **changes: Any) -> PromptSet:
    # the words in meta["text"] describe the untransformed prompts, so they are dropped
    meta = {k: v for k, v in prompts.meta.items() if k != "text"}
    meta["transforms"] = [*prompts.meta.get("transforms", []), name]
    return replace(prompts, meta=meta, **changes)


def _answers(prompts: PromptSet, transform: str) -> tuple[Tensor, Tensor]:
    if prompts.correct is None or prompts.wrong is None:
        missing = "correct" if prompts.correct is None else "wrong"
        raise MiAssertInputError(
            f"{transform} needs answer ids, but the prompt set has no {missing} ids; give a "
            "PromptSet with correct and wrong (e.g. mi_assert.prompts.ioi.ioi_prompt_set or "
            "mi_assert.prompts.pairs.induction_pairs)")
    return prompts.correct, prompts.wrong


def swap_answers() -> Transform:
    """``correct`` and ``wrong`` trade places; tokens unchanged (``logit_diff`` flips sign)."""
    def swap(prompts: PromptSet) -> PromptSet:
        correct, wrong = _answers(prompts, "swap_answers")
        return _with_meta(prompts, "swap_answers", correct=wrong.clone(), wrong=correct.clone())

    return _named(swap, "swap_answers")


def _trade_tokens(tokens: Tensor, a: Tensor, b: Tensor) -> Tensor:
    """Per row, every ``a[i]`` becomes ``b[i]`` and every ``b[i]`` becomes ``a[i]``."""
    a, b = a.to(tokens.device)[:, None], b.to(tokens.device)[:, None]
    return torch.where(tokens == a, b, torch.where(tokens == b, a, tokens))


def swap_io_and_s() -> Transform:
    """IOI prompts: the IO name (``correct``) and the subject S (``wrong``) trade places at every
    occurrence in the prompt, and the answers trade too. The new IO occurs once where the old
    IO stood, so the positions in ``meta`` stay valid."""
    def swap(prompts: PromptSet) -> PromptSet:
        io, s = _answers(prompts, "swap_io_and_s")
        for name, ids in (("IO", io), ("S", s)):
            absent = ~(prompts.clean == ids.to(prompts.clean.device)[:, None]).any(dim=1)
            if bool(absent.any()):
                rows = absent.nonzero()[:, 0].tolist()[:5]
                raise MiAssertInputError(
                    f"swap_io_and_s: the {name} answer id does not occur in clean prompt(s) "
                    f"{rows}; it swaps names that occur in IOI prompts (correct = IO, wrong = S "
                    "token ids), as mi_assert.prompts.ioi.ioi_prompt_set builds them")
        corrupted = None if prompts.corrupted is None else _trade_tokens(prompts.corrupted, io, s)
        return _with_meta(prompts, "swap_io_and_s", clean=_trade_tokens(prompts.clean, io, s),
                          corrupted=corrupted, correct=s.clone(), wrong=io.clone())

    return _named(swap, "swap_io_and_s")


def _content_ids(vocab: Any) -> Tensor:
    if isinstance(vocab, Tensor):
        ids = vocab
    else:
        try:
            ids = as_handle(vocab).content_token_ids()
        except (MiAssertInputError, TypeError, AttributeError) as exc:
            raise MiAssertInputError(
                f"relabel_tokens: vocab must be a model (its content token ids are permuted) or "
                f"a 1-d integer tensor of token ids; got {type(vocab).__name__}") from exc
    if ids.ndim != 1 or ids.is_floating_point() or ids.numel() < 2 or int(ids.min()) < 0:
        raise MiAssertInputError(
            "relabel_tokens: vocab must hold at least 2 non-negative token ids in a 1-d integer "
            f"tensor; got shape {tuple(ids.shape)} dtype {ids.dtype}")
    if ids.unique().numel() != ids.numel():
        raise MiAssertInputError("relabel_tokens: vocab holds repeated ids; give each id once")
    return ids.long().cpu()


def relabel_tokens(seed: int, vocab: Any) -> Transform:
    """One seeded random permutation of ``vocab`` (a model: its content token ids, BOS and other
    special ids excluded; or a 1-d id tensor) applied to every token and answer; ids outside
    ``vocab`` are kept. The same seed and vocabulary give the same permutation."""
    ids = _content_ids(vocab)
    gen = torch.Generator().manual_seed(int(seed))
    image = ids[torch.randperm(ids.numel(), generator=gen)]

    def relabel(prompts: PromptSet) -> PromptSet:
        tensors = [t for t in (prompts.clean, prompts.corrupted, prompts.correct, prompts.wrong)
                   if t is not None]
        size = max(int(ids.max()), *(int(t.max()) for t in tensors)) + 1
        table = torch.arange(size)
        table[ids] = image

        def apply(t: Tensor | None) -> Tensor | None:
            return None if t is None else table.to(t.device)[t]

        return _with_meta(prompts, f"relabel_tokens(seed={seed})", clean=apply(prompts.clean),
                          corrupted=apply(prompts.corrupted), correct=apply(prompts.correct),
                          wrong=apply(prompts.wrong))

    return _named(relabel, f"relabel_tokens(seed={seed})")


def _second_half_start(prompts: PromptSet) -> int:
    """Where the repeat starts: the last ``meta['prefix_len']`` tokens for induction pairs
    (``[BOS] r_0..r_{L-1} r_0..r_{m-1}``); otherwise the last ``pos // 2`` tokens (``[BOS] r r``)."""
    n_pos = int(prompts.clean.shape[1])
    prefix_len = prompts.meta.get("prefix_len")
    repeated = prefix_len if isinstance(prefix_len, int) else n_pos // 2
    return n_pos - repeated


def _derangement(n: int, gen: torch.Generator) -> Tensor:
    """A uniformly random permutation of ``n`` items that moves every item (rejection sampling:
    about e draws on average)."""
    while True:
        perm = torch.randperm(n, generator=gen)
        if bool((perm != torch.arange(n)).all()):
            return perm


def shuffle_second_half(seed: int) -> Transform:
    """Per prompt, the tokens of the repeat (the second half: the last ``meta['prefix_len']`` tokens
    of induction pairs, otherwise the last ``pos // 2``) are put in a seeded random order
    that moves every one of them, so the last token is no longer the one whose earlier
    successor is the induction answer. Answers and earlier tokens are unchanged."""
    def shuffle(prompts: PromptSet) -> PromptSet:
        start = _second_half_start(prompts)
        n_moved = int(prompts.clean.shape[1]) - start
        if n_moved < 2:
            raise MiAssertInputError(
                f"shuffle_second_half: prompts of {prompts.clean.shape[1]} tokens have "
                f"{n_moved} token(s) in the second half; shuffling needs at least 2")
        gen = torch.Generator().manual_seed(int(seed))
        order = torch.stack([_derangement(n_moved, gen) for _ in range(len(prompts))])
        order = (order + start).to(prompts.clean.device)

        def apply(t: Tensor | None) -> Tensor | None:
            if t is None:
                return None
            out = t.clone()
            out[:, start:] = t.gather(1, order)
            return out

        return _with_meta(prompts, f"shuffle_second_half(seed={seed})", clean=apply(prompts.clean),
                          corrupted=apply(prompts.corrupted))

    return _named(shuffle, f"shuffle_second_half(seed={seed})")


__all__ = ["Transform", "relabel_tokens", "shuffle_second_half", "swap_answers", "swap_io_and_s"]
