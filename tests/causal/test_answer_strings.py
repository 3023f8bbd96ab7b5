"""Metrics with answer strings: single tokens of the model's tokenizer, bound when used with it."""

from __future__ import annotations

import pytest
import torch

import mi_assert
from mi_assert.errors import MiAssertInputError

CLEAN = ["When Mary and John went to the store, John gave a drink to"] * 2
CORRUPTED = ["When Mary and John went to the store, Mary gave a drink to"] * 2


@pytest.fixture(scope="module")
def tiny(one_torch_thread):
    """tiny-gpt2: a Hugging Face GPT-2 with a trained byte-level BPE tokenizer."""
    return mi_assert.load_model("tiny-gpt2", device="cpu")


def _id(handle, text: str) -> int:
    (token,) = handle.tokenizer(text, add_special_tokens=False)["input_ids"]
    return int(token)


def test_single_token_strings_equal_their_ids(tiny):
    mary, john = _id(tiny, " Mary"), _id(tiny, " John")
    logits = tiny.forward(CLEAN)
    by_string = mi_assert.logit_diff(" Mary", " John").bind(tiny)
    by_id = mi_assert.logit_diff(mary, john)
    assert torch.equal(by_string(logits), by_id(logits))
    per_prompt = mi_assert.logit_diff([" Mary", " John"], [" John", " Mary"]).bind(tiny)
    assert torch.equal(per_prompt.correct_ids, torch.tensor([mary, john]))
    assert torch.allclose(mi_assert.logprob(" Mary").bind(tiny)(logits),
                          mi_assert.logprob(mary)(logits))


def test_a_sweep_binds_answer_strings_to_the_models_tokenizer(tiny):
    by_string = mi_assert.patching_sweep(tiny, CLEAN, CORRUPTED, mi_assert.logit_diff(" Mary", " John"),
                                         site="resid_pre")
    by_id = mi_assert.patching_sweep(tiny, CLEAN, CORRUPTED,
                                     mi_assert.logit_diff(_id(tiny, " Mary"), _id(tiny, " John")),
                                     site="resid_pre")
    assert torch.equal(torch.as_tensor(by_string.values), torch.as_tensor(by_id.values))
    assert by_string.clean_value == by_id.clean_value


def test_multi_token_answers_say_how_they_tokenize(tiny):
    with pytest.raises(MiAssertInputError) as err:
        mi_assert.patching_sweep(tiny, CLEAN, CORRUPTED, mi_assert.logit_diff("Paris", "London"),
                                 site="resid_pre")
    message = str(err.value)
    assert "exactly one token" in message
    assert "correct_ids 'Paris' is 3 tokens ['P', 'ar', 'is']" in message
    assert "wrong_ids 'London' is 4 tokens" in message  # every bad answer, not only the first
    assert "leading space" in message


def test_the_leading_space_variant_is_offered_when_it_is_one_token(tiny):
    with pytest.raises(MiAssertInputError, match=r"'store' is 2 tokens \['st', 'ore'\] \(' store' is one token"):
        mi_assert.logit_diff("store", " John").bind(tiny)


def test_words_outside_a_word_level_vocabulary_are_refused(one_torch_thread):
    ioi = mi_assert.load_model("ioi-small", device="cpu")
    with pytest.raises(MiAssertInputError, match="'Zanzibar' is not in the vocabulary"):
        mi_assert.logit_diff("Mary", "Zanzibar").bind(ioi)


def test_no_tokenizer_is_refused_clearly(planted):
    handle, _ = planted
    tokens = torch.zeros(2, 4, dtype=torch.long)
    with pytest.raises(MiAssertInputError, match=r"answers 'a', 'b' are strings, but model "
                                                 r"'planted-induction@s0' has no tokenizer"):
        mi_assert.patching_sweep(handle, tokens, tokens + 1, mi_assert.logit_diff("a", "b"))


def test_unbound_strings_are_refused_when_called_directly():
    with pytest.raises(MiAssertInputError, match=r"holds answer strings 'Paris'.*metric.bind\(model\)"):
        mi_assert.logit_diff("Paris", 3)(torch.zeros(1, 2, 8))


@pytest.mark.parametrize("answers, match", [
    (["Mary", 3], "mixes strings and ids"),
    (None, "an int, a list of ints"),
    ([], "is empty"),
    (torch.tensor([True]), "dtype torch.bool"),
])
def test_bad_answer_values(answers, match):
    with pytest.raises(MiAssertInputError, match=match):
        mi_assert.logit_diff(answers, 1)
