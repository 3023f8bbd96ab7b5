"""Direct logit attribution: ground truth on the planted model, equality with TransformerLens."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import mi_assert
from mi_assert.causal.attribution import check_direct_logit_attribution, direct_logit_attribution
from mi_assert.errors import MiAssertInputError
from mi_assert.verdict import ClaimFailed
from tests.evidence_contract import check_evidence as check_invariants


def test_induction_head_carries_the_logit_difference(planted, induction_batch):
    handle, circuit = planted
    tokens, correct, wrong = induction_batch
    (ind,) = circuit.heads("induction")
    ev = mi_assert.assert_direct_logit_attribution(
        handle, tokens, ind, correct, wrong, min_share=0.9, position=-2)
    check_invariants(ev)
    assert ev.passed and ev.estimate > 0.95
    assert ev.metric == "share of the logit difference (ratio of means)"
    assert (ev.threshold, ev.n, ev.unit) == (0.9, 24, "prompts")
    assert ev.model["spec"] == "planted-induction@s0"
    heat = ev.figures["dla_heads"]
    assert heat["kind"] == "heatmap"
    dla = direct_logit_attribution(handle, tokens, correct, wrong, position=-2)
    np.testing.assert_allclose(heat["data"], dla.heads.mean(axis=0))
    # the heatmap's largest cell is the induction head, and it carries the logit difference
    assert np.unravel_index(np.argmax(heat["data"]), heat["data"].shape) == tuple(ind)
    assert heat["data"][ind] == pytest.approx(dla.total.mean(), rel=0.05)
    # the same prompts: the induction head is not "about nothing"
    with pytest.raises(ClaimFailed, match="share") as info:
        mi_assert.assert_direct_logit_attribution(
            handle, tokens, ind, correct, wrong, max_abs_share=0.05, position=-2)
    failed = info.value.evidence
    check_invariants(failed)
    assert failed.deciding == "share < 0.05" and failed.bound > 0.9


def test_distractors_contribute_about_nothing(planted, induction_batch):
    handle, circuit = planted
    tokens, correct, wrong = induction_batch
    (ind,) = circuit.heads("induction")
    others = [circuit.heads(role)[0] for role in ("previous_token", "self", "uniform")]
    for head in others:
        ev = mi_assert.assert_direct_logit_attribution(
            handle, tokens, head, correct, wrong, max_abs_share=0.05, position=-2)
        check_invariants(ev)
        assert abs(ev.details["share (ratio of means)"]) < 0.02
        assert {m.claim for m in ev.family} == {"share < 0.05", "share > -0.05"}
    (self_head,) = circuit.heads("self")
    with pytest.raises(AssertionError) as info:
        mi_assert.assert_direct_logit_attribution(
            handle, tokens, self_head, correct, wrong, min_share=0.5, position=-2)
    check_invariants(info.value.evidence)
    message = str(info.value)
    assert "Top direct contributors" in message
    # the failure message names the real writer first
    first = message.split("Top direct contributors")[1].splitlines()[1]
    assert f"L{ind[0]}H{ind[1]}" in first


def test_min_value_and_lists_of_components(planted, induction_batch):
    handle, circuit = planted
    tokens, correct, wrong = induction_batch
    (ind,) = circuit.heads("induction")
    label = f"L{ind[0]}H{ind[1]}"
    ev = mi_assert.assert_direct_logit_attribution(
        handle, tokens, label, correct, wrong, min_value=3.0, min_share=0.9, position=-2)
    check_invariants(ev)
    assert [m.metric for m in ev.family] == ["share of the logit difference (ratio of means)",
                                             "direct logit difference attribution (logits)"]
    dla = direct_logit_attribution(handle, tokens, correct, wrong, position=-2)
    value = ev.family[1]
    assert value.estimate == pytest.approx(dla.heads[:, ind[0], ind[1]].mean())
    assert value.threshold == 3.0 and value.estimate > 5
    # attn1 holds the induction head plus b_O: its share is about the same
    ev_layer = mi_assert.assert_direct_logit_attribution(
        handle, tokens, "attn1", correct, wrong, min_share=0.9, position=-2)
    assert ev_layer.estimate == pytest.approx(ev.family[0].estimate, abs=0.02)
    # layer 0 writes nothing the unembedding reads (no direct path): a sum of its heads fails
    with pytest.raises(ClaimFailed) as info:
        mi_assert.assert_direct_logit_attribution(
            handle, tokens, ["0.0", "0.1", "0.2", "0.3"], correct, wrong, min_value=1.0,
            position=-2)
    layer0 = info.value.evidence
    check_invariants(layer0)
    assert layer0.settings["components"] == "L0H0 + L0H1 + L0H2 + L0H3"
    assert layer0.estimate == pytest.approx(dla.heads[:, 0].sum(-1).mean())
    assert abs(layer0.estimate) < 0.2 and layer0.bound < 1.0


def test_non_positive_logit_difference_makes_the_share_undefined(planted, induction_batch):
    """Swapped answers: the model's logit difference is about -10 on every prompt. A share of
    it means nothing, so the share member fails with that reason as its headline, and no bound
    is printed as cleared."""
    handle, circuit = planted
    tokens, correct, wrong = induction_batch
    (ind,) = circuit.heads("induction")
    ev = check_direct_logit_attribution(handle, tokens, ind, wrong, correct, min_share=0.9,
                                        position=-2)
    check_invariants(ev)
    assert not ev.passed
    assert ev.reason.startswith("undefined:") and "<= 0" in ev.reason
    line = ev.summary_line()
    assert ev.reason in line and line.endswith("FAIL")
    assert " > threshold" not in line and "pass" not in ev.table()
    assert "undefined" in ev.details["share (ratio of means)"]
    assert ev.details["mean logit difference"] < -5
    # with a min_value member that passes, the undefined share still decides the claim
    both = check_direct_logit_attribution(handle, tokens, ind, wrong, correct, min_share=0.9,
                                          min_value=-100.0, position=-2)
    check_invariants(both)
    assert not both.passed and both.deciding == "share > 0.9" and both.reason == ev.reason
    assert [m.passed for m in both.family] == [False, True]
    with pytest.raises(ClaimFailed, match="undefined: the model's mean logit difference"):
        mi_assert.assert_direct_logit_attribution(handle, tokens, ind, wrong, correct,
                                                  min_share=0.9, position=-2)
    # a claim on the contribution in logits alone stays defined: the head writes about -10
    value = check_direct_logit_attribution(handle, tokens, ind, wrong, correct, min_value=-1.0,
                                           position=-2)
    check_invariants(value)
    assert not value.passed and not value.reason and value.estimate < -5


def test_check_measures_and_judges_without_raising(planted, induction_batch):
    handle, circuit = planted
    tokens, correct, wrong = induction_batch
    (ind,) = circuit.heads("induction")
    (self_head,) = circuit.heads("self")
    true = check_direct_logit_attribution(handle, tokens, ind, correct, wrong, min_share=0.9,
                                          position=-2)
    false = check_direct_logit_attribution(handle, tokens, self_head, correct, wrong,
                                           min_share=0.5, position=-2)
    for ev in (true, false):
        check_invariants(ev)
    assert true.passed and not false.passed and abs(false.estimate) < 0.05
    asserted = mi_assert.assert_direct_logit_attribution(handle, tokens, ind, correct, wrong,
                                                         min_share=0.9, position=-2)
    assert asserted.to_dict() == true.to_dict()


def test_seeds_pool_the_bootstrap_and_seed_is_their_alias(planted, induction_batch):
    handle, circuit = planted
    tokens, correct, wrong = induction_batch
    (ind,) = circuit.heads("induction")
    ev = check_direct_logit_attribution(handle, tokens, ind, correct, wrong, min_share=0.9,
                                        position=-2, seeds=[0, 1, 2])
    check_invariants(ev)
    # the same prompts under three seeds are one sample: one row of 24 prompts whose bootstrap
    # pools the three seeds' resamples, not three replications
    assert ev.passed and [r.seed for r in ev.per_seed] == [0] and ev.n == 24
    assert ev.details["seeds_passed"] == "1 of 1"
    assert "seeds 1, 2 resample the same data as seed 0" in ev.details["seeds_sharing_data"]
    one = check_direct_logit_attribution(handle, tokens, ind, correct, wrong, min_share=0.9,
                                         position=-2, seeds=[0])
    assert one.estimate == ev.estimate and (one.low, one.high) != (ev.low, ev.high)
    with pytest.raises(MiAssertInputError, match="seeds over the same data only vary the bootstrap"):
        check_direct_logit_attribution(handle, tokens, ind, correct, wrong, min_share=0.9,
                                       position=-2, seeds=[0, 1], quorum=2)
    alias = check_direct_logit_attribution(handle, tokens, ind, correct, wrong, min_share=0.9,
                                           position=-2, seed=2)
    listed = check_direct_logit_attribution(handle, tokens, ind, correct, wrong, min_share=0.9,
                                            position=-2, seeds=[2])
    assert alias.to_dict() == listed.to_dict()
    with pytest.raises(MiAssertInputError, match="distinct"):
        check_direct_logit_attribution(handle, tokens, ind, correct, wrong, min_share=0.9,
                                       position=-2, seeds=[1, 1])
    with pytest.raises(MiAssertInputError, match="not both"):
        check_direct_logit_attribution(handle, tokens, ind, correct, wrong, min_share=0.9,
                                       position=-2, seeds=[1], seed=1)
    with pytest.raises(MiAssertInputError, match="quorum"):
        check_direct_logit_attribution(handle, tokens, ind, correct, wrong, min_share=0.9,
                                       position=-2, seeds=[0, 1], quorum=3)


def test_duplicated_prompts_are_one_unit(planted, induction_batch):
    handle, circuit = planted
    tokens, correct, wrong = induction_batch
    (ind,) = circuit.heads("induction")
    copies = tokens[:4].repeat(6, 1)
    with pytest.raises(MiAssertInputError, match="4 distinct prompts"):
        check_direct_logit_attribution(handle, copies, ind, correct[:4].repeat(6),
                                       wrong[:4].repeat(6), min_share=0.9, position=-2)
    # min_prompts sets the bar; above it the copies are resampled together (n counts prompts)
    ev = check_direct_logit_attribution(handle, copies, ind, correct[:4].repeat(6),
                                        wrong[:4].repeat(6), min_share=0.9, position=-2,
                                        min_prompts=4)
    check_invariants(ev)
    assert ev.n == 4
    with pytest.raises(MiAssertInputError, match="min_prompts"):
        check_direct_logit_attribution(handle, tokens, ind, correct, wrong, min_share=0.9,
                                       position=-2, min_prompts=1)


def test_decomposition_is_exact(planted, induction_batch):
    handle, _ = planted
    tokens, correct, wrong = induction_batch
    dla = direct_logit_attribution(handle, tokens, correct, wrong, position=-2)
    assert dla.normalization == "none"
    assert dla.residual_gap < 1e-4
    # the writers sum to the model's logit difference, prompt by prompt
    summed = dla.embed + dla.pos_embed + dla.attn.sum(-1) + dla.constant
    np.testing.assert_allclose(summed, dla.total, atol=1e-4)
    # a layer's attention output is its heads plus b_O: with no final norm, b_O's direct term
    # is b_O . (W_U[:, correct] - W_U[:, wrong])
    model = handle.model
    direction = (model.W_U[:, correct] - model.W_U[:, wrong]).detach().double()  # [d_model, batch]
    b_O = model.b_O.detach().double()  # [n_layers, d_model]
    np.testing.assert_allclose(dla.attn - dla.heads.sum(-1), (b_O @ direction).T.numpy(),
                               atol=1e-4)
    # each head's term by hand: its z at the position, through W_O, onto the answer direction
    _, cache = model.run_with_cache(tokens)
    for layer in range(model.cfg.n_layers):
        z = cache[f"blocks.{layer}.attn.hook_z"][:, -2].detach().double()  # [batch, head, d_head]
        out = torch.einsum("bhd,hdm->bhm", z, model.W_O[layer].detach().double())
        manual = torch.einsum("bhm,mb->bh", out, direction)
        np.testing.assert_allclose(dla.heads[:, layer], manual.numpy(), atol=1e-4)
    assert np.abs(dla.heads).max() > 1.0  # the comparison is not between zeros
    assert dla.units == [tuple(row) for row in tokens.tolist()]
    logits = handle.forward(tokens)[:, -2]
    rows = torch.arange(tokens.shape[0])
    ld = (logits[rows, correct] - logits[rows, wrong]).double().numpy()
    np.testing.assert_allclose(dla.total, ld, atol=1e-4)


def _tl_head_dla(model, tokens, correct, wrong, pos):
    """TransformerLens's own DLA: cached-scale LN on the head stack, times ln_final.w * dW_U."""
    _, cache = model.run_with_cache(tokens)
    stack = cache.stack_head_results(layer=-1, pos_slice=pos, apply_ln=True)
    direction = model.ln_final.w[:, None] * (model.W_U[:, correct] - model.W_U[:, wrong])
    return (stack * direction.T[None]).sum(-1)  # [layer*head, batch]


def test_equals_transformer_lens_with_layernorm(ln_model, ln_batch):
    tokens, correct, wrong = ln_batch
    for pos in (-1, 5):
        ours = direct_logit_attribution(ln_model, tokens, correct, wrong, position=pos)
        assert ours.normalization == "layernorm"
        tl = _tl_head_dla(ln_model, tokens, correct, wrong, pos).detach().double()
        mine = torch.from_numpy(ours.heads).permute(1, 2, 0).reshape(tl.shape)
        assert (mine - tl).abs().max() <= 1e-4
        assert tl.abs().max() > 0.05  # the comparison is not between zeros
        assert ours.residual_gap < 1e-4
        summed = (ours.embed + ours.pos_embed + ours.attn.sum(-1) + ours.mlp.sum(-1)
                  + ours.constant)
        np.testing.assert_allclose(summed, ours.total, atol=1e-4)
        logits = ln_model(tokens)[:, pos].detach().double()
        rows = torch.arange(tokens.shape[0])
        np.testing.assert_allclose(ours.total, (logits[rows, correct] - logits[rows, wrong]).numpy(),
                                   atol=1e-4)


def test_equals_transformer_lens_logit_attrs_on_folded_model(ln_model, ln_batch):
    """TL's documented idiom, ``cache.logit_attrs(cache.decompose_resid(...))``, is exact when
    the final LN weight is folded into W_U; compare every writer against it."""
    from transformer_lens import HookedTransformer

    tokens, correct, wrong = ln_batch
    folded = HookedTransformer(ln_model.cfg)
    folded.load_and_process_state_dict(ln_model.state_dict(), fold_ln=True,
                                       center_writing_weights=True, center_unembed=True)
    folded.eval()
    pos = -1
    ours = direct_logit_attribution(folded, tokens, correct, wrong, position=pos)
    _, cache = folded.run_with_cache(tokens)
    heads = cache.logit_attrs(cache.stack_head_results(layer=-1, pos_slice=pos),
                              tokens=correct, incorrect_tokens=wrong, pos_slice=pos)
    mine = torch.from_numpy(ours.heads).permute(1, 2, 0).reshape(heads.shape)
    assert (mine - heads.detach().double()).abs().max() <= 1e-4
    stack, labels = cache.decompose_resid(layer=-1, pos_slice=pos, return_labels=True)
    attrs = cache.logit_attrs(stack, tokens=correct, incorrect_tokens=wrong, pos_slice=pos)
    tl = dict(zip(labels, attrs.detach().double(), strict=True))
    np.testing.assert_allclose(ours.embed, tl["embed"], atol=1e-4)
    np.testing.assert_allclose(ours.pos_embed, tl["pos_embed"], atol=1e-4)
    for layer in range(2):
        np.testing.assert_allclose(ours.attn[:, layer], tl[f"{layer}_attn_out"], atol=1e-4)
        np.testing.assert_allclose(ours.mlp[:, layer], tl[f"{layer}_mlp_out"], atol=1e-4)


def test_works_with_frozen_parameters(ln_model, ln_batch):
    tokens, correct, wrong = ln_batch
    before = direct_logit_attribution(ln_model, tokens, correct, wrong)
    flags = [p.requires_grad for p in ln_model.parameters()]
    try:
        for p in ln_model.parameters():
            p.requires_grad_(False)
        after = direct_logit_attribution(ln_model, tokens, correct, wrong)
    finally:
        for p, flag in zip(ln_model.parameters(), flags, strict=True):
            p.requires_grad_(flag)
    np.testing.assert_allclose(before.heads, after.heads, atol=1e-10)


def test_deterministic_for_a_seed(planted, induction_batch):
    handle, circuit = planted
    tokens, correct, wrong = induction_batch
    (ind,) = circuit.heads("induction")
    runs = [mi_assert.assert_direct_logit_attribution(
        handle, tokens, ind, correct, wrong, min_share=0.5, position=-2, seed=7).to_dict()
        for _ in range(2)]
    for run in runs:
        run["model"].pop("checkpoint", None)
    assert runs[0] == runs[1]


@pytest.mark.parametrize("kwargs, match", [
    ({"components": (2, 0)}, "out of range"),
    ({"components": (1, 9)}, "out of range"),
    ({"components": "mlp0"}, "attention-only"),
    ({"components": "resid_pre1"}, "does not write into the residual stream"),
    ({"components": "nonsense"}, "unknown component"),
    ({"correct_ids": 64}, "correct_ids must lie in 0..63"),
    ({"wrong_ids": [1, 2, 3]}, "3 ids but there are 24 prompts"),
    ({"position": 40}, "position 40 is out of range"),
    ({"min_share": None}, "give at least one threshold"),
    ({"alpha": 0.7}, "alpha"),
    ({"max_abs_share": 1.5}, "max_abs_share"),
])
def test_bad_input(planted, induction_batch, kwargs, match):
    handle, _ = planted
    tokens, correct, wrong = induction_batch
    args = {"components": (1, 0), "correct_ids": correct, "wrong_ids": wrong, "min_share": 0.5,
            "position": -2, **kwargs}
    with pytest.raises(MiAssertInputError, match=match):
        mi_assert.assert_direct_logit_attribution(handle, tokens, **args)


def test_equal_correct_and_wrong_is_an_input_error(planted, induction_batch):
    handle, _ = planted
    tokens, correct, _ = induction_batch
    with pytest.raises(MiAssertInputError, match="correct_ids equal wrong_ids"):
        direct_logit_attribution(handle, tokens, correct, correct)


def test_same_numbers_through_the_nnsight_backend(planted, induction_batch):
    """DLA and the logit lens use only handle primitives: another backend gives the same values."""
    from mi_assert.causal.attribution import logit_lens_ranks

    handle, _ = planted
    tokens, correct, wrong = (t[:8] for t in induction_batch)
    other = mi_assert.load_model("planted-induction@s0", backend="nnsight", device="cpu")
    assert other.backend != handle.backend
    ours = direct_logit_attribution(other, tokens, correct, wrong, position=-2)
    ref = direct_logit_attribution(handle, tokens, correct, wrong, position=-2)
    np.testing.assert_allclose(ours.heads, ref.heads, atol=1e-5)
    np.testing.assert_array_equal(logit_lens_ranks(other, tokens, correct, position=-2),
                                  logit_lens_ranks(handle, tokens, correct, position=-2))


def test_one_forward_that_records_no_parameter_graph(planted, induction_batch):
    """DLA pays for one forward and one backward from the final norm's output: during the pass
    no parameter requires grad (so the blocks record nothing), and afterwards all do again."""
    from unittest import mock

    from mi_assert import cost

    handle, _ = planted
    tokens, correct, wrong = induction_batch
    params = list(handle.torch_module.parameters())
    assert all(p.requires_grad for p in params)
    real = handle.run_with_edits
    seen: list[bool] = []

    def spy(*args, **kwargs):
        seen.append(any(p.requires_grad for p in params))
        return real(*args, **kwargs)

    start = cost.snapshot()
    with mock.patch.object(handle, "run_with_edits", spy):
        direct_logit_attribution(handle, tokens, correct, wrong, position=-2)
    assert seen == [False]
    assert cost.between(start, cost.snapshot())["forward_passes"] == 1
    assert all(p.requires_grad for p in params)
