"""Claims stated for all prompts of a family: counterexample search with Hypothesis, and
statistical invariance / directional claims under prompt transforms."""

from mi_assert.search.counterexample import (
    Counterexample,
    CounterexampleFound,
    SearchResult,
    assert_holds_for_all,
    check_holds_for_all,
)
from mi_assert.search.invariance import (
    assert_directional,
    assert_invariant,
    check_directional,
    check_invariant,
)
from mi_assert.search.prompt_claims import attention_margin, logit_diff_margin, patching_margin
from mi_assert.search.transforms import (
    Transform,
    relabel_tokens,
    shuffle_second_half,
    swap_answers,
    swap_io_and_s,
)

__all__ = [
    "Counterexample",
    "CounterexampleFound",
    "SearchResult",
    "Transform",
    "assert_directional",
    "assert_holds_for_all",
    "assert_invariant",
    "attention_margin",
    "check_directional",
    "check_holds_for_all",
    "check_invariant",
    "logit_diff_margin",
    "patching_margin",
    "relabel_tokens",
    "shuffle_second_half",
    "swap_answers",
    "swap_io_and_s",
]
