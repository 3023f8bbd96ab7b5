"""Logit lens: the planted answer appears only after the induction head (layer 1)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import mi_assert
from mi_assert.causal.attribution import logit_lens_ranks
from mi_assert.errors import MiAssertInputError


def test_answer_appears_only_after_the_induction_layer(planted, induction_batch):
    handle, _ = planted
    tokens, correct, _ = induction_batch
    ev = mi_assert.assert_logit_lens(handle, tokens, correct, from_layer=1, top_k=1, position=-2)
    assert ev.passed and ev.estimate == 1.0
    assert ev.figures["logit_lens_rank"]["kind"] == "line"
    assert ev.figures["logit_lens_rank"]["data"].shape == (handle.n_layers,)
    with pytest.raises(AssertionError, match="L0: "):
        mi_assert.assert_logit_lens(handle, tokens, correct, from_layer=0, top_k=1, position=-2)


def test_ranks_match_a_manual_lens_with_layernorm(ln_model, ln_batch):
    """Layer l's lens = ln_final (statistics recomputed) + unembed of resid_post l."""
    tokens, correct, _ = ln_batch
    ranks = logit_lens_ranks(ln_model, tokens, correct, position=-1)
    _, cache = ln_model.run_with_cache(tokens)
    for layer in range(ln_model.cfg.n_layers):
        resid = cache[f"blocks.{layer}.hook_resid_post"]
        logits = ln_model.unembed(ln_model.ln_final(resid))[:, -1]
        ans = logits[torch.arange(len(correct)), correct]
        manual = ((logits >= ans[:, None]).sum(-1) - 1).numpy()
        np.testing.assert_array_equal(ranks[:, layer], manual)
    assert ranks[:, :-1].std() > 0  # the layers differ, so the comparison means something


def test_top_k_relaxes_the_claim(planted, induction_batch):
    handle, _ = planted
    tokens, correct, _ = induction_batch
    ranks = logit_lens_ranks(handle, tokens, correct, position=-2)
    assert (ranks[:, 1] == 0).all()
    # layer 0 writes nothing the unembedding reads: the answer sits at a noise-level rank
    assert np.median(ranks[:, 0]) > 5
    with pytest.raises(AssertionError):
        mi_assert.assert_logit_lens(handle, tokens, correct, from_layer=0, top_k=5, position=-2)


@pytest.mark.parametrize("kwargs, match", [
    ({"from_layer": 2}, "layer 2 is out of range"),
    ({"top_k": 0}, "top_k"),
    ({"min_fraction": 1.0}, "min_fraction"),
    ({"answer_ids": [1, 2]}, "2 ids but there are 24 prompts"),
    ({"answer_ids": -1}, "answer_ids must lie in 0..63"),
    ({"position": -50}, "out of range"),
])
def test_bad_input(planted, induction_batch, kwargs, match):
    handle, _ = planted
    tokens, correct, _ = induction_batch
    args = {"answer_ids": correct, "from_layer": 1, "position": -2, **kwargs}
    with pytest.raises(MiAssertInputError, match=match):
        mi_assert.assert_logit_lens(handle, tokens, **args)
