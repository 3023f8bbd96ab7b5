"""Hypothesis: claims stated for every prompt of a family, and the engine's invariants."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import mi_assert
from mi_assert.heads.scores import detection_pattern
from mi_assert.stats.claims import ClaimSpec
from mi_assert.strategies import (
    duplicate_token_prompts,
    ioi_prompts,
    model_settings,
    repeated_token_prompts,
)


@model_settings(max_examples=8)
@given(tokens=repeated_token_prompts(d_vocab=64, bos_token_id=0, min_len=3, max_len=31))
def test_planted_induction_head_holds_on_any_repeated_prompts(planted, tokens):
    handle, truth = planted
    assert len({tuple(row) for row in tokens.tolist()}) == len(tokens) >= 8  # distinct prompts
    ev = mi_assert.assert_induction_head(handle, truth.heads("induction"), prompts=tokens)
    assert ev.n == len(tokens)
    repeat_len = (tokens.shape[1] - 1) // 2
    if repeat_len != truth.offset + 1:  # the impostor only matches at one repeat length
        with pytest.raises(AssertionError):
            mi_assert.assert_induction_head(handle, truth.heads("positional"), prompts=tokens)


@model_settings(max_examples=5)
@given(tokens=duplicate_token_prompts(d_vocab=64, bos_token_id=0, max_len=40))
def test_planted_duplicate_token_head_on_any_prompts_with_duplicates(planted, tokens):
    handle, truth = planted
    assert bool((detection_pattern("duplicate_token", tokens).sum((-2, -1)) > 0).all())
    assert len({tuple(row) for row in tokens.tolist()}) == len(tokens) >= 8
    mi_assert.assert_duplicate_token_head(handle, truth.heads("duplicate_token"), prompts=tokens)


@model_settings(max_examples=5)
@given(prompts=ioi_prompts(min_prompts=2, max_prompts=6))
def test_ioi_prompts_are_aligned(prompts):
    if hasattr(prompts, "clean"):
        assert prompts.clean.shape == prompts.corrupted.shape
        assert len(prompts) == prompts.correct.shape[0]
    else:
        assert all(p.io in p.text and p.s in p.text for p in prompts)


@model_settings(max_examples=8)
@given(d_vocab=st.integers(4, 64), data=st.data())
def test_prompt_strategies_draw_enough_distinct_prompts(d_vocab, data):
    for strategy in (repeated_token_prompts(d_vocab=d_vocab, bos_token_id=0, min_len=3),
                     duplicate_token_prompts(d_vocab=d_vocab, bos_token_id=0)):
        tokens = data.draw(strategy)
        assert 8 <= len(tokens) == len({tuple(row) for row in tokens.tolist()})


@model_settings(max_examples=40)
@given(
    samples=st.lists(st.floats(-2, 2, allow_nan=False), min_size=2, max_size=30),
    threshold=st.floats(-1, 1),
    alternative=st.sampled_from(["greater", "less"]),
)
def test_verdict_always_agrees_with_the_bound(samples, threshold, alternative):
    ev = ClaimSpec("c", "m", {0: samples, 1: samples[::-1]}, threshold=threshold,
                   alternative=alternative, n_resamples=200, min_units=2).evaluate()
    clears = ev.bound > threshold if alternative == "greater" else ev.bound < threshold
    assert ev.passed == clears
    assert ev.low <= ev.estimate <= ev.high
    for row in ev.per_seed:
        assert row.passed == (row.bound > threshold if alternative == "greater" else row.bound < threshold)
        assert row.low <= row.estimate <= row.high
    if ev.passed:  # a passing claim's point estimate is on the claimed side too
        assert (np.mean(samples) > threshold) if alternative == "greater" else (np.mean(samples) < threshold)
