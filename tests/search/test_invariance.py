"""INV/DIR claims on ground-truth models, both ways, and their bad input."""

import pytest
import torch

import mi_assert
from mi_assert.errors import MiAssertInputError
from mi_assert.prompts import PromptSet
from mi_assert.prompts.ioi import ioi_prompt_set
from mi_assert.prompts.pairs import induction_pairs
from mi_assert.search import (
    assert_directional,
    assert_invariant,
    check_directional,
    check_invariant,
    relabel_tokens,
    shuffle_second_half,
    swap_answers,
    swap_io_and_s,
)
from mi_assert.verdict import ClaimFailed

#: the planted model writes a one-hot of the induction answer into the logits at weight
#: strength ~10 (mean logit diff 10.0 on these prompts); relabelling only changes which
#: N(0, 0.01) weight-noise entries are read, so a mean shift beyond 0.5 (5 % of the planted
#: logit difference) would mean the circuit reads token identity, which it does not
RELABEL_TOLERANCE = 0.5


@pytest.fixture(scope="module")
def ioi():
    handle = mi_assert.load_model("ioi-small", device="cpu")
    return handle, ioi_prompt_set(handle, seed=0, n_prompts=32, corruption="none")


@pytest.fixture(scope="module")
def induction(planted):
    handle, _ = planted
    return handle, induction_pairs(handle, seed=0, n_prompts=64)


def test_swapped_answers_decrease_the_logit_diff(ioi):
    handle, prompts = ioi
    ev = assert_directional(handle, "logit_diff", swap_answers(), prompts, direction="decrease",
                            min_effect=1.0)
    # d = -2 * logit_diff per prompt: the baseline mean is 8.93
    assert ev.estimate == pytest.approx(-17.87, abs=0.05)
    assert ev.bound < -1.0


def test_a_false_increase_fails(ioi):
    handle, prompts = ioi
    with pytest.raises(ClaimFailed) as failed:
        assert_directional(handle, "logit_diff", swap_answers(), prompts, direction="increase")
    assert failed.value.evidence.estimate < 0


def test_swapping_io_and_s_keeps_the_ioi_answer(ioi):
    handle, prompts = ioi
    swapped = swap_io_and_s()(prompts)
    assert torch.equal(swapped.correct, prompts.wrong)
    assert torch.equal(swapped.wrong, prompts.correct)
    io_pos = prompts.meta["io_pos"]
    rows = torch.arange(len(prompts))
    assert torch.equal(swapped.clean[rows, io_pos], prompts.wrong)
    # the names traded at every occurrence: the repeated name is now the old IO
    s2_pos = prompts.meta["s2_pos"]
    assert torch.equal(swapped.clean[rows, s2_pos], prompts.correct)


def test_induction_is_invariant_under_relabelled_tokens(induction):
    handle, prompts = induction
    ev = assert_invariant(handle, "logit_diff", relabel_tokens(0, handle), prompts,
                          tolerance=RELABEL_TOLERANCE)
    low, high = (m.bound for m in ev.members)
    assert -RELABEL_TOLERANCE < low and high < RELABEL_TOLERANCE


def test_induction_is_not_invariant_under_a_shuffled_repeat(induction):
    handle, prompts = induction
    with pytest.raises(ClaimFailed) as failed:
        assert_invariant(handle, "logit_diff", shuffle_second_half(0), prompts,
                         tolerance=RELABEL_TOLERANCE)
    assert failed.value.evidence.details["mean_d"][0] < -5


def test_relabelling_keeps_bos_and_maps_answers_with_tokens(induction):
    handle, prompts = induction
    relabelled = relabel_tokens(3, handle)(prompts)
    assert torch.equal(relabelled.clean[:, 0], prompts.clean[:, 0])
    # the answer is still the token after the earlier copy of the last token
    m = prompts.meta["prefix_len"]
    assert torch.equal(relabelled.correct, relabelled.clean[:, 1 + m])


def test_shuffle_moves_the_last_token(induction):
    _, prompts = induction
    shuffled = shuffle_second_half(0)(prompts)
    assert not bool((shuffled.clean[:, -1] == prompts.clean[:, -1]).any())
    m = prompts.meta["prefix_len"]
    assert torch.equal(shuffled.clean[:, :-m], prompts.clean[:, :-m])


@pytest.mark.parametrize("tolerance", [0, -0.5, float("nan"), True])
def test_tolerance_must_be_positive(induction, tolerance):
    handle, prompts = induction
    with pytest.raises(MiAssertInputError, match="tolerance must be a finite number > 0"):
        check_invariant(handle, "logit_diff", swap_answers(), prompts, tolerance=tolerance)


def test_direction_must_be_named(induction):
    handle, prompts = induction
    with pytest.raises(MiAssertInputError, match="direction must be one of 'increase', 'decrease'"):
        check_directional(handle, "logit_diff", swap_answers(), prompts, direction="up")


def test_a_transform_returning_tokens_is_refused(induction):
    handle, prompts = induction
    with pytest.raises(MiAssertInputError, match="must map a PromptSet to a PromptSet"):
        check_invariant(handle, "logit_diff", lambda p: p.clean, prompts, tolerance=0.5)


def test_a_length_change_is_refused_when_the_metric_reads_a_fixed_position(induction):
    handle, prompts = induction

    def drop_first(p: PromptSet) -> PromptSet:
        return PromptSet(clean=p.clean[:, 1:], correct=p.correct, wrong=p.wrong)

    metric = mi_assert.logit_diff(prompts.correct, prompts.wrong, position=3)
    with pytest.raises(MiAssertInputError, match="changed the prompt length from 18 to 17"):
        check_invariant(handle, metric, drop_first, prompts, tolerance=0.5)


def test_a_named_metric_needs_answers(induction):
    handle, prompts = induction
    with pytest.raises(MiAssertInputError, match="needs answer ids"):
        check_invariant(handle, "logit_diff", shuffle_second_half(0), prompts.clean,
                        tolerance=0.5)


def test_swap_io_and_s_refuses_prompts_without_the_names():
    prompts = PromptSet(clean=torch.tensor([[0, 5, 6, 5]]), correct=torch.tensor([9]),
                        wrong=torch.tensor([5]))
    with pytest.raises(MiAssertInputError, match="IO answer id does not occur in clean prompt"):
        swap_io_and_s()(prompts)
