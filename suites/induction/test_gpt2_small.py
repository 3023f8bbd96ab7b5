"""Published attention heads of GPT-2 small (see /work/shared/reference/known-results.md).

* induction heads 5.1, 5.5, 6.9, 7.2, 7.10 (ARENA 1.2, detector threshold 0.4), one family:
  each must pass at its Holm-adjusted level;
* previous-token head 4.11 (TransformerLens head-detector demo; IOI paper).

Needs GPT-2 weights in the local Hugging Face cache; without them the ``mi_model`` fixture
skips with the reason (``ModelUnavailableError``).
"""

from __future__ import annotations

import pytest

import mi_assert

pytestmark = pytest.mark.mi_model("gpt2")

INDUCTION_HEADS = ["5.1", "5.5", "6.9", "7.2", "7.10"]
PREVIOUS_TOKEN_HEADS = ["4.11"]


def test_published_induction_heads(mi_model):
    mi_assert.assert_induction_head(mi_model, INDUCTION_HEADS)


def test_published_previous_token_head(mi_model):
    mi_assert.assert_previous_token_head(mi_model, PREVIOUS_TOKEN_HEADS)


def test_published_induction_heads_rank_near_the_top(mi_model):
    found = mi_assert.find_heads(mi_model, "induction", top_k=10)
    listed = {f"{layer}.{head}" for layer, head, _ in found}
    missing = set(INDUCTION_HEADS) - listed
    assert not missing, f"published induction heads {sorted(missing)} not in the top 10:\n{found}"
