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
:mod:`mi_assert.prompts.ioi` when that module exists, else :class:`IOISentence` texts).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from mi_assert.prompts import repeated_tokens

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


@st.composite
def repeated_token_prompts(
    draw: st.DrawFn,
    d_vocab: int,
    bos_token_id: int | None = None,
    min_len: int = 2,
    max_len: int = 31,
    min_prompts: int = 4,
    max_prompts: int = 16,
    exclude: Sequence[int] = (),
) -> torch.Tensor:
    """``[BOS] + r + r`` with a random repeat length (shared by the batch) and random tokens."""
    repeat_len = draw(st.integers(min_len, max_len))
    n = draw(st.integers(min_prompts, max_prompts))
    ids = _vocab(d_vocab, [*exclude, *([bos_token_id] if bos_token_id is not None else [])])
    seed = draw(st.integers(0, 2**31 - 1))
    return repeated_tokens(n, repeat_len, d_vocab, seed, bos_token_id=bos_token_id,
                           vocab=torch.tensor(ids, dtype=torch.long))


@st.composite
def duplicate_token_prompts(
    draw: st.DrawFn,
    d_vocab: int,
    bos_token_id: int | None = None,
    min_len: int = 4,
    max_len: int = 40,
    min_prompts: int = 4,
    max_prompts: int = 16,
    exclude: Sequence[int] = (),
) -> torch.Tensor:
    """Random sequences in which every prompt has at least one token repeated later.

    Tokens are drawn from a small random sub-vocabulary so duplicates are frequent, and one
    position per prompt is forced to copy an earlier token.
    """
    length = draw(st.integers(min_len, max_len))
    n = draw(st.integers(min_prompts, max_prompts))
    ids = _vocab(d_vocab, [*exclude, *([bos_token_id] if bos_token_id is not None else [])])
    seed = draw(st.integers(0, 2**31 - 1))
    gen = torch.Generator().manual_seed(seed)
    sub = torch.tensor(ids)[torch.randperm(len(ids), generator=gen)[: max(2, min(len(ids), length // 2))]]
    seq = sub[torch.randint(0, len(sub), (n, length), generator=gen)]
    src = torch.randint(0, length - 1, (n,), generator=gen)
    # dst uniform in src+1 .. length-1 (rand < 1, so the floor stays in range)
    dst = src + 1 + (torch.rand(n, generator=gen) * (length - 1 - src)).long()
    seq[torch.arange(n), dst] = seq[torch.arange(n), src]
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
    min_prompts: int = 2,
    max_prompts: int = 16,
    corruption: str = "abc",
    templates: str = "fit",
) -> Any:
    """IOI prompts: a ``PromptSet`` from :mod:`mi_assert.prompts.ioi` (imported lazily), or a
    list of :class:`IOISentence` from a small built-in template list when it is absent."""
    n = draw(st.integers(min_prompts, max_prompts))
    seed = draw(st.integers(0, 2**31 - 1))
    try:
        from mi_assert.prompts import ioi
    except ModuleNotFoundError as exc:
        if exc.name != "mi_assert.prompts.ioi":
            raise
        ioi = None
    if ioi is not None:
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
