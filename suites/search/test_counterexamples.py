"""Claims for every prompt: counterexample search on the planted model and on a trained model
whose induction fades with the repeat length.

Run: ``pytest suites/search``. The report shows each search as a claim (its least margin over
the examples searched); a falsified claim's card shows the shrunk counterexample, its repeat
length and the head's attention on it.
"""

from __future__ import annotations

import pytest

import mi_assert
from mi_assert.search import CounterexampleFound, assert_holds_for_all, attention_margin
from mi_assert.strategies import repeated_token_prompts

#: repeats of 2..31 tokens after BOS, batches of 1-4 prompts (vocab of the zoo models)
REPEATS = repeated_token_prompts(d_vocab=64, bos_token_id=0, min_len=2, max_len=31,
                                 min_prompts=1, max_prompts=4)


@pytest.mark.mi_model("planted-induction@s0")
def test_true_induction_head_survives_the_search(mi_model, mi_search_db):
    truth = mi_model.meta["ground_truth"]
    assert_holds_for_all(mi_model, attention_margin(*truth.heads("induction")[0]), REPEATS,
                         max_examples=100, database=mi_search_db)


@pytest.mark.mi_model("planted-induction@s0")
def test_positional_impostor_is_falsified(mi_model, mi_search_db):
    # a counterexample found here is saved in mi_search_db and replayed first next run
    truth = mi_model.meta["ground_truth"]
    with pytest.raises(CounterexampleFound, match="repeat length"):
        assert_holds_for_all(mi_model, attention_margin(*truth.heads("positional")[0]), REPEATS,
                             max_examples=100, database=mi_search_db)


@pytest.mark.mi_model("attn-only-2l-induction@s2")
def test_fading_induction_is_falsified_at_long_repeats(mi_model, mi_search_db):
    # the head find_heads ranks first; it stops attending the target past repeat length ~10
    top = mi_assert.find_heads(mi_model, "induction", top_k=1)[0]
    with pytest.raises(CounterexampleFound, match="repeat length"):
        assert_holds_for_all(mi_model, attention_margin(top.layer, top.head, 0.1), REPEATS,
                             max_examples=60, database=mi_search_db)
