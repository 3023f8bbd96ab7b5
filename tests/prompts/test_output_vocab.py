"""Models whose output vocabulary is smaller than the input one (compiled from RASP programs:
``d_vocab_out < d_vocab``, BOS and PAD ids past the output range, no tokenizer): generated
prompts and answers use only ids valid as both input and output and never a special id;
copying scores rank only ids that have an output logit."""

from __future__ import annotations

import math
import warnings

import pytest
import torch

from mi_assert import as_handle, check_ablation_effect, check_copying_head, patching_sweep
from mi_assert.errors import MiAssertInputError
from mi_assert.heads.prompts import repeated_prompt_rows
from mi_assert.prompts.generators import make_split
from mi_assert.prompts.pairs import induction_pairs

D_VOCAB, D_VOCAB_OUT = 22, 20
BOS, PAD = 20, 21  # input-only tokens, as a compiled RASP model has them
#: a content-range id declared special too (e.g. a separator): never drawn either
SEP = 3


def rasp_like(d_vocab: int = D_VOCAB, d_vocab_out: int = D_VOCAB_OUT, n_ctx: int = 32):
    from transformer_lens import HookedTransformer, HookedTransformerConfig

    cfg = HookedTransformerConfig(n_layers=2, d_model=32, n_ctx=n_ctx, d_head=8, n_heads=2,
                                  d_vocab=d_vocab, d_vocab_out=d_vocab_out, act_fn="relu",
                                  attn_only=False, d_mlp=32, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return HookedTransformer(cfg)


@pytest.fixture(scope="module")
def handle():
    return as_handle(rasp_like(), bos_token_id=BOS, special_token_ids=[PAD, SEP])


CONTENT = sorted(set(range(D_VOCAB_OUT)) - {SEP})


def test_declared_ids_shape_the_content_vocabulary(handle) -> None:
    assert handle.bos_token_id == BOS and handle.d_vocab_out == D_VOCAB_OUT
    assert handle.special_token_ids == {BOS, PAD, SEP}
    assert handle.content_token_ids().tolist() == CONTENT


def test_declaring_on_a_handle_leaves_the_original_as_it_was() -> None:
    plain = as_handle(rasp_like())
    declared = as_handle(plain, special_token_ids=[PAD])
    assert declared is not plain and PAD in declared.special_token_ids
    assert PAD not in plain.special_token_ids and as_handle(plain) is plain


@pytest.mark.parametrize("corruption", ["swap", "next"])
def test_induction_pairs_draw_only_content_ids(handle, corruption: str) -> None:
    ps = induction_pairs(handle, seed=0, n_prompts=16, corruption=corruption)
    assert bool((ps.clean[:, 0] == BOS).all())
    for tokens in (ps.clean[:, 1:], ps.corrupted[:, 1:], ps.correct, ps.wrong):
        assert set(tokens.unique().tolist()) <= set(CONTENT)


def test_repeated_prompts_draw_only_content_ids(handle) -> None:
    split = make_split(handle, "repeated", seed=0, n_prompts=8, repeat_len=10)
    assert set(split.heldout.clean[:, 1:].unique().tolist()) <= set(CONTENT)
    for row in repeated_prompt_rows(handle, 0, [6], n_prompts=4, vocab_fraction=1.0):
        assert set(row.tokens[:, 1:].unique().tolist()) <= set(CONTENT)


def test_patching_with_generated_pairs_runs(handle) -> None:
    result = patching_sweep(handle, induction_pairs(handle, seed=0, n_prompts=8), site="head_out")
    assert torch.isfinite(torch.as_tensor(result.values)).all()
    ev = check_ablation_effect(handle, "induction_pairs", [(1, 0)], seeds=[0], n_resamples=200,
                               prompt_kwargs={"n_prompts": 16})
    assert math.isfinite(ev.estimate)


def test_copying_score_ranks_only_ids_with_an_output_logit(handle) -> None:
    ev = check_copying_head(handle, 0, 0, seeds=[0], n_resamples=200)
    assert math.isfinite(ev.estimate) and ev.n == len(CONTENT)


def test_smaller_output_vocabulary_alone_is_handled() -> None:
    """No declarations: answers, prompts and copying scores stay below ``d_vocab_out``."""
    model = rasp_like()
    ps = induction_pairs(model, seed=0, n_prompts=16)
    assert int(torch.cat([ps.clean, ps.corrupted, ps.correct[:, None], ps.wrong[:, None]], 1).max()) < D_VOCAB_OUT
    assert torch.isfinite(torch.as_tensor(patching_sweep(model, ps, site="head_out").values)).all()
    ev = check_copying_head(model, 0, 0, seeds=[0], n_resamples=200)
    assert math.isfinite(ev.estimate) and ev.n == D_VOCAB_OUT


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"bos_token_id": D_VOCAB}, "bos_token_id: token id 22 is outside the input vocabulary 0..21"),
    ({"bos_token_id": "<bos>"}, "bos_token_id: token ids are ints"),
    ({"bos_token_id": True}, "bos_token_id: token ids are ints"),
    ({"special_token_ids": 21}, "special_token_ids must be a list of token ids"),
    ({"special_token_ids": "21"}, "special_token_ids must be a list of token ids"),
    ({"special_token_ids": [1.5]}, "special_token_ids: token ids are ints"),
    ({"special_token_ids": [-1]}, "special_token_ids: token id -1 is outside the input vocabulary"),
])
def test_bad_declarations_are_clear(kwargs: dict, message: str) -> None:
    with pytest.raises(MiAssertInputError, match=message):
        as_handle(rasp_like(), **kwargs)


def test_numpy_and_torch_integer_ids_are_accepted() -> None:
    import numpy as np

    handle = as_handle(rasp_like(), bos_token_id=np.int64(BOS), special_token_ids=torch.tensor([PAD]))
    assert handle.special_token_ids == {BOS, PAD}


def test_no_content_ids_left_is_clear() -> None:
    handle = as_handle(rasp_like(d_vocab=4, d_vocab_out=2), special_token_ids=[0, 1])
    with pytest.raises(MiAssertInputError, match="no content token ids"):
        handle.content_token_ids()


def test_copying_needs_two_ids_with_an_output_logit() -> None:
    handle = as_handle(rasp_like(d_vocab=4, d_vocab_out=2), special_token_ids=[0])
    with pytest.raises(MiAssertInputError, match="need at least 2"):
        check_copying_head(handle, 0, 0, seeds=[0])


def test_too_few_content_ids_for_induction_pairs_is_clear() -> None:
    handle = as_handle(rasp_like(d_vocab=12, d_vocab_out=6), bos_token_id=10)
    with pytest.raises(MiAssertInputError, match="6 content token ids.*too small for induction pairs"):
        induction_pairs(handle)


def test_marker_declares_special_ids(pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.mi_model("planted-induction@s0", device="cpu", special_token_ids=[5, 6])
        def test_special(mi_model):
            assert {0, 5, 6} <= mi_model.special_token_ids
            assert 5 not in mi_model.content_token_ids().tolist()
        """
    )
    pytester.runpytest("-p", "no:randomly").assert_outcomes(passed=1)
