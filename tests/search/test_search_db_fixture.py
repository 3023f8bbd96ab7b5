"""The mi_search_db fixture: a counterexample found in one run is replayed first in the next."""

from __future__ import annotations

# loaded before pytester snapshots sys.modules: numpy's C extensions cannot load twice
import mi_assert.stats  # noqa: F401

SUITE = '''
import pytest
from mi_assert.search import CounterexampleFound, assert_holds_for_all, attention_margin
from mi_assert.strategies import repeated_token_prompts

REPEATS = repeated_token_prompts(d_vocab=64, bos_token_id=0, min_len=2, max_len=31,
                                 min_prompts=1, max_prompts=4)


@pytest.mark.mi_model("attn-only-2l-induction@s2")
def test_fading_induction(mi_model, mi_search_db):
    # holds on the short repeats drawn first, fails past repeat length ~10: a search finds it
    claim = attention_margin(1, 2, 0.1)
    seen = []

    def watched(handle, tokens):
        seen.append(tokens.tolist())
        return claim(handle, tokens)

    watched.__name__ = claim.__name__
    with pytest.raises(CounterexampleFound) as err:
        assert_holds_for_all(mi_model, watched, REPEATS, max_examples=100, database=mi_search_db)
    print("FIRST", seen[0])
    print("CE", err.value.result.counterexample.batch.tolist())
    print("DB", mi_search_db)
'''


def _run(pytester, *args: str) -> dict[str, str]:
    result = pytester.runpytest_subprocess("-s", "-p", "no:cacheprovider", *args)
    result.assert_outcomes(passed=1)
    return dict(ln.split(" ", 1) for ln in result.outlines if ln.split(" ", 1)[0] in ("FIRST", "CE", "DB"))


def test_counterexample_is_replayed_first_from_the_configured_database(pytester):
    pytester.makepyfile(test_search=SUITE)
    first = _run(pytester, "--mi-search-db", "db")
    assert first["DB"] == str(pytester.path / "db") and any((pytester.path / "db").iterdir())
    assert first["FIRST"] != first["CE"]  # the first example held; the search found the failure
    again = _run(pytester, "--mi-search-db", "db")
    assert again["FIRST"] == first["CE"], "the saved counterexample is replayed first"


def test_default_database_is_under_the_rootdir(pytester):
    pytester.makepyfile(test_search=SUITE)
    assert _run(pytester)["DB"] == str(pytester.path / ".mi_search_db")
