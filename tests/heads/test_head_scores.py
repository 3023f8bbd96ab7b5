"""Head-role scores: TransformerLens head-detector parity, normalisation, bad input."""

from __future__ import annotations

import pytest
import torch

from mi_assert.errors import MiAssertInputError
from mi_assert.heads.prompts import repeated_prompt_rows
from mi_assert.heads.scores import (
    attention_scores,
    detection_pattern,
    resolve_role,
    standard_scores,
    tl_mul_score,
)

TL_NAMES = {"previous_token": "previous_token_head", "duplicate_token": "duplicate_token_head",
            "induction": "induction_head"}


@pytest.fixture(scope="module")
def prompts(planted):
    handle, _ = planted
    return repeated_prompt_rows(handle, seed=3, repeat_lens=[20], n_prompts=4)[0].tokens


@pytest.mark.parametrize("role", sorted(TL_NAMES))
def test_detection_patterns_equal_transformer_lens(role, prompts):
    from transformer_lens import head_detector

    ours = detection_pattern(role, prompts)
    for b in range(prompts.shape[0]):
        theirs = getattr(head_detector, f"get_{TL_NAMES[role]}_detection_pattern")(prompts[b:b + 1])
        assert torch.equal(ours[b], theirs.float()), f"prompt {b}"


@pytest.mark.parametrize("role", sorted(TL_NAMES))
def test_scores_equal_tl_detect_head_on_the_same_model(role, prompts, planted, monkeypatch):
    """TL's detect_head needs a tokenizer; the planted model has none, so its to_tokens is
    replaced by one returning our ids: everything else is TL's own code path."""
    from transformer_lens.head_detector import detect_head

    handle, _ = planted
    model = handle.model
    for b in range(prompts.shape[0]):
        tokens = prompts[b:b + 1]
        monkeypatch.setattr(model, "to_tokens", lambda seq, _t=tokens: _t, raising=False)
        tl = detect_head(model, "ids", TL_NAMES[role])  # [n_layers, n_heads], "mul", exclude_bos=False
        scores, _ = attention_scores(handle, role, tokens, keep_example=False)
        _, cache = handle.run_with_cache(tokens, [f"blocks.{i}.attn.hook_pattern" for i in range(2)])
        det = detection_pattern(role, tokens)
        for layer in range(2):
            pattern = cache[f"blocks.{layer}.attn.hook_pattern"][0]
            ours_tl = tl_mul_score(pattern, det[0])
            torch.testing.assert_close(ours_tl, tl[layer].float(), atol=1e-5, rtol=1e-5)
            # standard score = TL "mul" score * seq_len / number of query rows with a target
            n_rows = int((det[0].sum(-1) > 0).sum())
            torch.testing.assert_close(scores[role][0, layer], ours_tl * tokens.shape[1] / n_rows,
                                       atol=1e-5, rtol=1e-5)


def test_tl_mul_score_options_match_tl_formula():
    from transformer_lens.head_detector import compute_head_attention_similarity_score

    gen = torch.Generator().manual_seed(0)
    pattern = torch.softmax(torch.randn(9, 9, generator=gen).masked_fill(
        torch.triu(torch.ones(9, 9, dtype=torch.bool), 1), float("-inf")), -1)
    det = torch.tril(torch.randint(0, 2, (9, 9), generator=gen).float())
    for exclude_bos in (False, True):
        for exclude_current in (False, True):
            theirs = compute_head_attention_similarity_score(
                pattern, det, exclude_bos=exclude_bos, exclude_current_token=exclude_current,
                error_measure="mul")
            ours = tl_mul_score(pattern, det, exclude_bos, exclude_current)
            assert ours.item() == pytest.approx(theirs, abs=1e-6)


def test_standard_score_of_ideal_patterns_is_one():
    tokens = torch.tensor([[0, 5, 6, 7, 5, 6, 7]])
    for role in ("previous_token", "induction", "duplicate_token", "bos"):
        det = detection_pattern(role, tokens)
        ideal = det / det.sum(-1, keepdim=True).clamp_min(1)
        ideal[:, det[0].sum(-1) == 0, 0] = 1.0  # rows with no target attend to BOS
        score = standard_scores(ideal[:, None], det)
        assert score.item() == pytest.approx(1.0), role
    det = detection_pattern("induction", tokens)
    uniform = torch.tril(torch.ones(7, 7)) / torch.arange(1, 8)[:, None]
    assert standard_scores(uniform[None, None], det).item() < 0.5


def test_role_names_and_bad_roles():
    assert resolve_role("induction_head") == "induction"
    assert resolve_role("Previous-Token") == "previous_token"
    assert resolve_role("attention_sink") == "bos"
    with pytest.raises(MiAssertInputError, match="Did you mean 'induction'"):
        resolve_role("inductoin")
    with pytest.raises(MiAssertInputError, match="Allowed: induction, previous_token"):
        resolve_role("name_mover")


def test_prompts_without_targets_and_nan_patterns_raise(planted):
    handle, _ = planted
    no_repeats = torch.tensor([[0, 1, 2, 3, 4], [0, 5, 6, 7, 8]])
    with pytest.raises(MiAssertInputError, match="nothing to attend to"):
        attention_scores(handle, "induction", no_repeats)
    from mi_assert import load_model

    broken = load_model("planted-induction@s5", device="cpu")
    with torch.no_grad():
        broken.model.blocks[0].attn.W_Q[0, 0, 0] = float("nan")
    with pytest.raises(MiAssertInputError, match="non-finite"):
        attention_scores(broken, "previous_token", torch.tensor([[0, 1, 2, 1, 2]] * 2))
