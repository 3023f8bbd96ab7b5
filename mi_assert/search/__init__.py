"""Claims stated for all prompts of a family: counterexample search with Hypothesis."""

from mi_assert.search.counterexample import (
    Counterexample,
    CounterexampleFound,
    SearchResult,
    assert_holds_for_all,
    check_holds_for_all,
)
from mi_assert.search.prompt_claims import attention_margin, logit_diff_margin

__all__ = [
    "Counterexample",
    "CounterexampleFound",
    "SearchResult",
    "assert_holds_for_all",
    "attention_margin",
    "check_holds_for_all",
    "logit_diff_margin",
]
