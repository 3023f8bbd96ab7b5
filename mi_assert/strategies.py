"""Hypothesis strategies for interpretability prompts, and a settings profile for model tests.

Use them to state a claim for *every* prompt of a family instead of a hand-picked few::

    from hypothesis import given
    from mi_assert.strategies import model_settings, repeated_token_prompts

    @model_settings()
    @given(tokens=repeated_token_prompts(d_vocab=64, bos_token_id=0))
    def test_induction_head_on_any_repeat(tokens):
        mi_assert.assert_induction_head(model, 1, 2, prompts=tokens)

Strategies return token-id tensors ``[n_prompts, pos]`` (``torch.long``) ready for the
``prompts=`` option of the head assertions, except :func:`ioi_prompts` (a ``PromptSet`` from
:mod:`mi_assert.prompts.ioi` with a model, else :class:`IOISentence` texts).

The prompts of one draw are distinct and there are at least
:data:`~mi_assert.stats.claims.DEFAULT_MIN_UNITS` of them by default: a claim counts copies of
one prompt once and refuses rows with fewer distinct prompts than ``min_prompts``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from mi_assert.prompts import repeated_tokens
from mi_assert.stats.claims import DEFAULT_MIN_UNITS

#: IOI fallback material (used only when mi_assert.prompts.ioi is absent)
_NAMES: tuple[str, ...] = ("Mary", "John", "Tom", "James", "Anna", "Paul", "Kate", "Mark")
_TEMPLATES: tuple[str, ...] = (
    "When {IO} and {S} went to the store, {S} gave a drink to",
    "Then {IO} and {S} were at the park. {S} gave a ball to",
    "While {S} and {IO} were at the office, {S} handed a book to",
)


def _vocab(d_vocab: int, exclude: Sequence[int]) -> list[int]:
    ids = [i for i in range(d_vocab) if i not in set(exclude)]
    if not ids:
        raise ValueError(f"no token ids left in 0..{d_vocab - 1} after excluding {list(exclude)}")
    return ids


def _distinct_rows(make: Callable[[int], torch.Tensor], n: int, what: str,
                   attempts: int = 64) -> torch.Tensor:
    """``n`` distinct rows, taken in order from batches ``make(0)``, ``make(1)``, ..."""
    seen: dict[tuple[int, ...], torch.Tensor] = {}
    for attempt in range(attempts):
        for row in make(attempt):
            seen.setdefault(tuple(row.tolist()), row)
            if len(seen) == n:
                return torch.stack(list(seen.values()))
    raise ValueError(f"{what}: found only {len(seen)} distinct prompts of the {n} asked for; "
                     "allow longer prompts or a larger vocabulary")


@st.composite
def repeated_token_prompts(
    draw: st.DrawFn,
    d_vocab: int,
    bos_token_id: int | None = None,
    min_len: int = 2,
    max_len: int = 31,
    min_prompts: int = DEFAULT_MIN_UNITS,
    max_prompts: int = 16,
    exclude: Sequence[int] = (),
) -> torch.Tensor:
    """``[BOS] + r + r`` with a random repeat length (shared by the batch) and random tokens;
    the ``n`` prompts are distinct."""
    repeat_len = draw(st.integers(min_len, max_len))
    n = draw(st.integers(min_prompts, max_prompts))
    ids = _vocab(d_vocab, [*exclude, *([bos_token_id] if bos_token_id is not None else [])])
    if len(ids) ** repeat_len < n:
        raise ValueError(f"only {len(ids)}**{repeat_len} distinct prompts of repeat length "
                         f"{repeat_len} exist; {n} were asked for")
    seed = draw(st.integers(0, 2**31 - 1))
    vocab = torch.tensor(ids, dtype=torch.long)
    return _distinct_rows(
        lambda attempt: repeated_tokens(n, repeat_len, d_vocab, seed + attempt,
                                        bos_token_id=bos_token_id, vocab=vocab),
        n, "repeated_token_prompts")


@st.composite
def duplicate_token_prompts(
    draw: st.DrawFn,
    d_vocab: int,
    bos_token_id: int | None = None,
    min_len: int = 4,
    max_len: int = 40,
    min_prompts: int = DEFAULT_MIN_UNITS,
    max_prompts: int = 16,
    exclude: Sequence[int] = (),
) -> torch.Tensor:
    """Distinct random sequences in which every prompt has at least one token repeated later.

    Tokens are drawn from a small random sub-vocabulary (at least 3 ids where the vocabulary
    allows) so duplicates are frequent, and one position per prompt is forced to copy an
    earlier token.
    """
    length = draw(st.integers(min_len, max_len))
    n = draw(st.integers(min_prompts, max_prompts))
    ids = _vocab(d_vocab, [*exclude, *([bos_token_id] if bos_token_id is not None else [])])
    seed = draw(st.integers(0, 2**31 - 1))
    gen = torch.Generator().manual_seed(seed)
    k = min(len(ids), max(3, length // 2))
    sub = torch.tensor(ids)[torch.randperm(len(ids), generator=gen)[:k]]

    def batch(_attempt: int) -> torch.Tensor:
        seq = sub[torch.randint(0, len(sub), (n, length), generator=gen)]
        src = torch.randint(0, length - 1, (n,), generator=gen)
        # dst uniform in src+1 .. length-1 (rand < 1, so the floor stays in range)
        dst = src + 1 + (torch.rand(n, generator=gen) * (length - 1 - src)).long()
        seq[torch.arange(n), dst] = seq[torch.arange(n), src]
        return seq

    seq = _distinct_rows(batch, n, "duplicate_token_prompts")
    if bos_token_id is not None:
        seq = torch.cat([torch.full((n, 1), bos_token_id, dtype=torch.long), seq], dim=1)
    return seq


@dataclass(frozen=True)
class IOISentence:
    """Fallback IOI example (text only): ``text`` should be completed with ``io``."""

    text: str
    io: str
    s: str


@st.composite
def ioi_prompts(
    draw: st.DrawFn,
    handle: Any | None = None,
    min_prompts: int = DEFAULT_MIN_UNITS,
    max_prompts: int = 16,
    corruption: str = "abc",
    templates: str = "fit",
) -> Any:
    """IOI prompts: with a model ``handle``, a ``PromptSet`` from :mod:`mi_assert.prompts.ioi`
    (its templates and tokenizer); without one, :class:`IOISentence` texts from a small
    built-in template list."""
    n = draw(st.integers(min_prompts, max_prompts))
    seed = draw(st.integers(0, 2**31 - 1))
    if handle is not None:
        from mi_assert.prompts import ioi

        return ioi.ioi_prompt_set(handle, seed, n_prompts=n, corruption=corruption, templates=templates)
    rng = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        a, b = torch.randperm(len(_NAMES), generator=rng)[:2].tolist()
        template = _TEMPLATES[int(torch.randint(0, len(_TEMPLATES), (1,), generator=rng))]
        out.append(IOISentence(template.format(IO=_NAMES[a], S=_NAMES[b]), _NAMES[a], _NAMES[b]))
    return out


def in_ci() -> bool:
    """True under a CI runner (``CI`` set to anything but empty/0/false)."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def model_settings(max_examples: int = 10, **overrides: Any) -> settings:
    """Hypothesis settings for tests that run a model: no deadline (forward passes vary in
    time), few examples, derandomized under CI (reproducible runs), slow-data health checks
    off. Use as a decorator above ``@given``."""
    base: dict[str, Any] = {
        "deadline": None,
        "max_examples": max_examples,
        "derandomize": in_ci(),
        "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large,
                                  HealthCheck.function_scoped_fixture],
        "print_blob": True,
    }
    base.update(overrides)
    return settings(**base)


settings.register_profile("mi-assert-model", model_settings())
