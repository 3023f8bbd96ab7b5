"""Prompt-pair generators: alignment, answers, splits, registration, clear skips."""

from __future__ import annotations

import pytest
import torch

from mi_assert.errors import MiAssertInputError
from mi_assert.prompts.generators import available_generators, make_split
from mi_assert.prompts.pairs import factual_recall, induction_pairs


@pytest.mark.parametrize("corruption", ["swap", "next"])
def test_induction_pairs_aligned_and_answers(planted, corruption):
    handle, _ = planted
    ps = induction_pairs(handle, seed=3, n_prompts=8, corruption=corruption)
    L, m = ps.meta["repeat_len"], ps.meta["prefix_len"]
    assert ps.clean.shape == ps.corrupted.shape == (8, 1 + L + m)
    assert bool((ps.clean[:, 0] == 0).all())  # BOS
    assert bool((ps.correct != ps.wrong).all())
    # second halves are identical; only first-half tokens differ
    assert torch.equal(ps.clean[:, 1 + L:], ps.corrupted[:, 1 + L:])
    for row in range(8):
        x = ps.clean[row, -1]
        first_c, first_x = ps.clean[row, 1:1 + L].tolist(), ps.corrupted[row, 1:1 + L].tolist()
        assert first_c[first_c.index(int(x)) + 1] == ps.correct[row]
        assert first_x[first_x.index(int(x)) + 1] == ps.wrong[row]


def test_generators_registered_and_split(planted):
    handle, _ = planted
    assert {"induction_pairs", "factual_recall"} <= set(available_generators())
    split = make_split(handle, "induction_pairs", seed=1, n_prompts=4)
    assert not torch.equal(split.fit.clean, split.heldout.clean)
    again = make_split(handle, "induction_pairs", seed=1, n_prompts=4)
    assert torch.equal(split.heldout.corrupted, again.heldout.corrupted)
    with pytest.raises(MiAssertInputError, match="unknown induction_pairs option"):
        make_split(handle, "induction_pairs", seed=1, bogus=1)


def test_factual_recall_needs_a_tokenizer(planted):
    handle, _ = planted
    with pytest.raises(MiAssertInputError, match="need a tokenizer"):
        factual_recall(handle)


def test_factual_recall_on_a_toy_vocabulary_is_a_clear_error():
    """The IOI word-level tokenizer spells no capital city: a clear error, not garbage prompts."""
    from types import SimpleNamespace
    from unittest import mock

    from mi_assert.prompts.ioi import build_tokenizer

    toy = SimpleNamespace(tokenizer=build_tokenizer(), spec="toy", bos_token_id=0)
    with mock.patch("mi_assert.prompts.pairs.as_handle", lambda m: m), \
            pytest.raises(MiAssertInputError, match="single tokens"):
        factual_recall(toy)
