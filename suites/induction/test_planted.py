"""Induction-circuit claims on the planted model (ground truth known exactly).

Run: ``pytest suites/induction/test_planted.py`` (add ``--mi-backend nnsight`` for nnsight).
"""

from __future__ import annotations

import pytest

import mi_assert
from mi_assert.verdict import ClaimFailed

pytestmark = pytest.mark.mi_model("planted-induction@s0")


def test_previous_token_head(mi_model):
    truth = mi_model.meta["ground_truth"]
    mi_assert.assert_previous_token_head(mi_model, truth.heads("previous_token"))


def test_induction_head(mi_model):
    truth = mi_model.meta["ground_truth"]
    mi_assert.assert_induction_head(mi_model, truth.heads("induction"))


def test_induction_head_copies(mi_model):
    truth = mi_model.meta["ground_truth"]
    mi_assert.assert_copying_head(mi_model, truth.heads("copying"))


def test_duplicate_token_head(mi_model):
    truth = mi_model.meta["ground_truth"]
    mi_assert.assert_duplicate_token_head(mi_model, truth.heads("duplicate_token"))


def test_attention_sinks(mi_model):
    truth = mi_model.meta["ground_truth"]
    mi_assert.assert_attends_to_bos(mi_model, truth.heads("bos"))


def test_positional_impostor_is_not_an_induction_head(mi_model):
    truth = mi_model.meta["ground_truth"]
    with pytest.raises(ClaimFailed, match="FAIL"):
        mi_assert.assert_induction_head(mi_model, truth.heads("positional"))


def test_discovered_heads_hold_on_heldout_prompts(mi_model):
    prev = mi_assert.find_heads(mi_model, "previous_token", top_k=1)
    induction = mi_assert.find_heads(mi_model, "induction", top_k=1)
    mi_assert.assert_previous_token_head(mi_model, prev.heads)
    mi_assert.assert_induction_head(mi_model, induction.heads)
