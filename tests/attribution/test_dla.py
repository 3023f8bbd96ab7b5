"""Direct logit attribution: ground truth on the planted model, equality with TransformerLens."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import mi_assert
from mi_assert.causal.attribution import direct_logit_attribution
from mi_assert.errors import MiAssertInputError


def test_induction_head_carries_the_logit_difference(planted, induction_batch):
    handle, circuit = planted
    tokens, correct, wrong = induction_batch
    (ind,) = circuit.heads("induction")
    ev = mi_assert.assert_direct_logit_attribution(
        handle, tokens, ind, correct, wrong, min_share=0.9, position=-2)
    assert ev.passed and ev.estimate > 0.95
    assert ev.model["spec"] == "planted-induction@s0"
    assert ev.figures["dla_heads"]["data"].shape == (handle.n_layers, handle.n_heads)
    assert ev.figures["dla_heads"]["kind"] == "heatmap"
    # the same prompts: the induction head is not "about nothing"
    with pytest.raises(AssertionError, match="share"):
        mi_assert.assert_direct_logit_attribution(
            handle, tokens, ind, correct, wrong, max_abs_share=0.05, position=-2)


def test_distractors_contribute_about_nothing(planted, induction_batch):
    handle, circuit = planted
    tokens, correct, wrong = induction_batch
    (ind,) = circuit.heads("induction")
    others = [circuit.heads(role)[0] for role in ("previous_token", "self", "uniform")]
    for head in others:
        ev = mi_assert.assert_direct_logit_attribution(
            handle, tokens, head, correct, wrong, max_abs_share=0.05, position=-2)
        assert abs(ev.details["share (ratio of means)"]) < 0.02
    (self_head,) = circuit.heads("self")
    with pytest.raises(AssertionError) as info:
        mi_assert.assert_direct_logit_attribution(
            handle, tokens, self_head, correct, wrong, min_share=0.5, position=-2)
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
    assert len(ev.family) == 2
    # attn1 holds the induction head plus b_O: its share is about the same
    ev_layer = mi_assert.assert_direct_logit_attribution(
        handle, tokens, "attn1", correct, wrong, min_share=0.9, position=-2)
    assert ev_layer.estimate == pytest.approx(ev.family[0].estimate, abs=0.02)
    # layer 0 writes nothing the unembedding reads (no direct path): a sum of its heads fails
    with pytest.raises(AssertionError):
        mi_assert.assert_direct_logit_attribution(
            handle, tokens, ["0.0", "0.1", "0.2", "0.3"], correct, wrong, min_value=1.0,
            position=-2)


def test_decomposition_is_exact(planted, induction_batch):
    handle, _ = planted
    tokens, correct, wrong = induction_batch
    dla = direct_logit_attribution(handle, tokens, correct, wrong, position=-2)
    assert dla.normalization == "none"
    assert dla.residual_gap < 1e-4
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
