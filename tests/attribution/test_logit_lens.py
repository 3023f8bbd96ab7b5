"""Logit lens: the planted answer appears only after the induction head (layer 1)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import mi_assert
from mi_assert.causal.attribution import check_logit_lens, logit_lens_ranks
from mi_assert.errors import MiAssertInputError
from mi_assert.verdict import ClaimFailed
from tests.evidence_contract import check_evidence as check_invariants


def test_answer_appears_only_after_the_induction_layer(planted, induction_batch):
    handle, _ = planted
    tokens, correct, _ = induction_batch
    # 24 of 24 hits bound the rate at 0.05^(1/24) = 0.883 (Clopper-Pearson): not above the
    # default 0.9, above 0.85
    short = mi_assert.check_logit_lens(handle, tokens, correct, from_layer=1, top_k=1, position=-2)
    assert not short.passed and short.estimate == 1.0 and short.threshold == 0.9
    assert short.bound == pytest.approx(0.05 ** (1 / 24))
    ev = mi_assert.assert_logit_lens(handle, tokens, correct, from_layer=1, top_k=1, position=-2,
                                     min_fraction=0.85)
    check_invariants(ev)
    assert ev.passed and ev.estimate == 1.0
    assert (ev.threshold, ev.n) == (0.85, 24)
    ranks = logit_lens_ranks(handle, tokens, correct, position=-2)
    rank_fig = ev.figures["logit_lens_rank"]
    assert rank_fig["kind"] == "line"
    np.testing.assert_allclose(rank_fig["data"], ranks.mean(axis=0))
    assert rank_fig["data"][1] == 0 and rank_fig["data"][0] > 5
    rate = ev.figures["logit_lens_topk"]["data"]
    np.testing.assert_allclose(rate, (ranks == 0).mean(axis=0))
    assert rate[1] == 1.0 and rate[0] < 0.1
    with pytest.raises(ClaimFailed, match="L0: ") as info:
        mi_assert.assert_logit_lens(handle, tokens, correct, from_layer=0, top_k=1, position=-2)
    # from layer 0: the answer is top-1 at layer 1 and (bar chance) not at layer 0
    failed = info.value.evidence
    check_invariants(failed)
    assert failed.estimate == pytest.approx((ranks == 0).mean()) and failed.estimate < 0.55
    assert failed.bound < 0.9


def test_check_does_not_raise_and_seeds_are_rows(planted, induction_batch):
    handle, _ = planted
    tokens, correct, _ = induction_batch
    false = check_logit_lens(handle, tokens, correct, from_layer=0, position=-2)
    check_invariants(false)
    assert not false.passed and 0.5 <= false.estimate < 0.55
    ev = check_logit_lens(handle, tokens, correct, from_layer=1, position=-2, seeds=[0, 1],
                          quorum=1, min_fraction=0.85)
    check_invariants(ev)
    # fixed prompts: seed 1 repeats seed 0's data, so there is one seed to count, not two
    assert ev.passed and [r.seed for r in ev.per_seed] == [0]
    assert ev.settings["quorum"] == "1 of 1 seeds" and "seeds_sharing_data" in ev.details
    alias = check_logit_lens(handle, tokens, correct, from_layer=1, position=-2, seed=1)
    assert alias.to_dict() == check_logit_lens(handle, tokens, correct, from_layer=1,
                                               position=-2, seeds=1).to_dict()
    with pytest.raises(MiAssertInputError, match="distinct"):
        check_logit_lens(handle, tokens, correct, from_layer=1, position=-2, seeds=[3, 3])


def test_duplicated_prompts_are_refused(planted, induction_batch):
    handle, _ = planted
    tokens, correct, _ = induction_batch
    with pytest.raises(MiAssertInputError, match="rests on 2 distinct prompts"):
        check_logit_lens(handle, tokens[:2].repeat(12, 1), correct[:2].repeat(12),
                         from_layer=1, position=-2)


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
    with pytest.raises(ClaimFailed) as info:
        mi_assert.assert_logit_lens(handle, tokens, correct, from_layer=0, top_k=5, position=-2)
    relaxed = info.value.evidence
    check_invariants(relaxed)
    expected = (ranks < 5).mean(axis=1).mean()
    assert relaxed.estimate == pytest.approx(expected) and relaxed.estimate < 0.9
    # from layer 1 every prompt is top-1, so top-5 holds too
    assert mi_assert.assert_logit_lens(handle, tokens, correct, from_layer=1, top_k=5,
                                       position=-2, min_fraction=0.85).estimate == 1.0


@pytest.mark.parametrize("kwargs, match", [
    ({"from_layer": 2}, "layer 2 is out of range"),
    ({"top_k": 0}, "top_k"),
    ({"min_fraction": 1.0}, "min_fraction=1.0: threshold 1 is outside the range"),
    ({"min_fraction": -0.1}, "min_fraction"),
    ({"min_prompts": 0}, "min_prompts"),
    ({"n_resamples": 10}, "n_resamples"),
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


def test_every_layer_is_read_from_one_forward_pass(planted, induction_batch):
    """The lens reads each layer's cached residual through the final norm and unembedding at
    the claimed position: one forward pass in all, not one per layer."""
    from mi_assert import cost

    handle, _ = planted
    tokens, correct, _ = induction_batch
    start = cost.snapshot()
    logit_lens_ranks(handle, tokens, correct, position=-2)
    assert cost.between(start, cost.snapshot())["forward_passes"] == 1
