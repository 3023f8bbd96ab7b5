"""String prompts and token ids: errors name the prompt, its length and the words at fault."""

from __future__ import annotations

import pytest
import torch

from mi_assert import load_model
from mi_assert.errors import MiAssertInputError

STORE = "When Mary and John went to the store"


@pytest.fixture(scope="module")
def tiny(one_torch_thread):
    """tiny-gpt2: byte-level BPE tokenizer, BOS prepended."""
    return load_model("tiny-gpt2", device="cpu")


def test_prompts_of_different_lengths_name_the_prompt_its_count_and_split_words(tiny):
    prompts = [STORE, "When Christopher and John went to the store", "When Mary and John went to the park"]
    with pytest.raises(MiAssertInputError) as err:
        tiny.to_tokens(prompts)
    message = str(err.value)
    assert "2 of 3 prompts have 9 tokens with BOS" in message
    assert "prompt 1 'When Christopher and John went to the store' has 14" in message
    assert "prompt 1: ' Christopher' -> [' Chris', 't', 'o', 'p', 'he', 'r']" in message
    assert "same number of tokens" in message


def test_without_bos_the_count_says_so(tiny):
    with pytest.raises(MiAssertInputError, match=r"have 8 tokens \(no BOS\), but prompt 1 .* has 13"):
        tiny.to_tokens([STORE, "When Christopher and John went to the store"], prepend_bos=False)


def test_a_missing_word_is_told_apart_from_a_split_word(tiny):
    with pytest.raises(MiAssertInputError, match=r"No word splits into several tokens: the prompts have "
                                                 r"different numbers of words"):
        tiny.to_tokens(["Mary went", "Mary and John went"])


def test_equal_lengths_still_tokenize(tiny):
    tokens = tiny.to_tokens([STORE, "When John and Mary went to the store"])
    assert tokens.shape == (2, 9) and bool((tokens[:, 0] == tiny.bos_token_id).all())


def test_words_outside_a_word_level_vocabulary_are_refused(one_torch_thread):
    ioi = load_model("ioi-small", device="cpu")
    with pytest.raises(MiAssertInputError, match=r"outside the tokenizer's vocabulary .*'<unk>'.*"
                                                 r"prompt 1 'When Zanzibar went': 'Zanzibar'"):
        ioi.to_tokens(["When Mary went", "When Zanzibar went"])


@pytest.mark.parametrize("tokens, match", [
    ([[1, 2], [3]], "not a rectangular array of ids"),
    (None, r"no tokens given \(None\)"),
    (torch.tensor([[True, False]]), "dtype torch.bool"),
    ([[1.5, 2.0]], "integer ids; got dtype torch.float32"),
])
def test_token_ids_that_are_not_ids_are_refused(planted, tokens, match):
    handle, _ = planted
    with pytest.raises(MiAssertInputError, match=match):
        handle.forward(tokens)
