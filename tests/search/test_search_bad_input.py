"""Bad input to the search is refused with what is wrong and what is allowed."""

from __future__ import annotations

import pytest
import torch
from hypothesis import strategies as st

from mi_assert.errors import MiAssertInputError
from mi_assert.search import attention_margin, check_holds_for_all
from mi_assert.strategies import repeated_token_prompts

REPEATS = repeated_token_prompts(d_vocab=64, bos_token_id=0, min_len=2, max_len=8,
                                 min_prompts=1, max_prompts=2)


def test_claim_returning_a_scalar_is_refused(planted):
    handle, _ = planted
    with pytest.raises(MiAssertInputError, match="one margin per prompt"):
        check_holds_for_all(handle, lambda h, t: torch.tensor(1.0), REPEATS, max_examples=5)


def test_claim_returning_per_position_values_is_refused(planted):
    handle, _ = planted
    with pytest.raises(MiAssertInputError, match=r"returned shape \(\d+, \d+\)"):
        check_holds_for_all(handle, lambda h, t: t.float(), REPEATS, max_examples=5)


def test_strategy_drawing_the_wrong_shape_is_refused(planted):
    handle, _ = planted
    cubes = st.just(torch.zeros(2, 3, 4, dtype=torch.long))
    with pytest.raises(MiAssertInputError, match=r"shape \(2, 3, 4\).*\[batch, pos\]"):
        check_holds_for_all(handle, attention_margin(1, 0), cubes, max_examples=5)


def test_prompts_without_repeats_are_refused_by_attention_margin(planted):
    handle, _ = planted
    no_repeat = st.just(torch.tensor([[0, 1, 2, 3]]))
    with pytest.raises(MiAssertInputError, match="repeated tokens"):
        check_holds_for_all(handle, attention_margin(1, 0), no_repeat, max_examples=5)


@pytest.mark.parametrize("kwargs, match", [
    ({"max_examples": 0}, "max_examples"),
    ({"database": 3}, "database must be"),
])
def test_bad_options_are_refused(planted, kwargs, match):
    handle, _ = planted
    with pytest.raises(MiAssertInputError, match=match):
        check_holds_for_all(handle, attention_margin(1, 0), REPEATS, **kwargs)


def test_fixed_prompts_instead_of_a_strategy_are_refused(planted):
    handle, _ = planted
    with pytest.raises(MiAssertInputError, match="hypothesis strategy"):
        check_holds_for_all(handle, attention_margin(1, 0), torch.zeros(2, 5, dtype=torch.long))


def test_min_attention_out_of_range_is_refused():
    with pytest.raises(MiAssertInputError, match=r"\(0, 1\]"):
        attention_margin(1, 0, min_attention=1.5)
