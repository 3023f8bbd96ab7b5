"""find_heads ranks heads on fit prompts; assertions confirm on held-out ones."""

from __future__ import annotations

import pytest
import torch

import mi_assert
from mi_assert.errors import MiAssertInputError
from mi_assert.heads import HeadScore
from tests.evidence_contract import check_evidence as check_invariants

ROLES = ("induction", "previous_token", "duplicate_token", "bos", "copying")


@pytest.mark.parametrize("role", ROLES)
def test_top_heads_are_the_planted_ones(role, planted):
    handle, truth = planted
    true_heads = set(truth.heads(role))
    ranking = mi_assert.find_heads(handle, role, top_k=len(true_heads))
    assert set(ranking.heads) == true_heads
    assert all(isinstance(s, HeadScore) for s in ranking)
    full = mi_assert.find_heads(handle, role, top_k=None)
    assert len(full) == 8 and [s.score for s in full] == sorted((s.score for s in full), reverse=True)


def test_find_heads_uses_fit_prompts_and_confirms_on_heldout(planted):
    handle, _ = planted
    ranking = mi_assert.find_heads(handle, "induction", top_k=1, seed=4)
    assert ranking.settings["split"] == "fit" and ranking.settings["seeds"] == [4]
    layer, head, score = ranking[0]
    assert score > 0.9
    ev = mi_assert.assert_induction_head(handle, layer, head, seeds=(4,))
    assert ev.settings["split"] == "heldout"


def test_repr_and_table(planted):
    handle, _ = planted
    ranking = mi_assert.find_heads(handle, "previous_token", top_k=3)
    assert repr(ranking).startswith("HeadRanking(previous_token: L")
    table = str(ranking)
    assert "rank  head" in table and table.count("\n") == 4
    layer, head, score = ranking[0]
    assert repr(ranking[0]) == f"L{layer}H{head}={score:.3f}"


def test_custom_prompts_and_bad_input(planted):
    handle, truth = planted
    tokens = torch.tensor([[0, 5, 6, 7, 5, 6, 7], [0, 9, 3, 4, 9, 3, 4]])
    ranking = mi_assert.find_heads(handle, "induction", top_k=1, prompts=tokens)
    assert ranking.heads == truth.heads("induction")
    with pytest.raises(MiAssertInputError, match="unknown head role 'indction'.*Did you mean 'induction'"):
        mi_assert.find_heads(handle, "indction")
    with pytest.raises(MiAssertInputError, match="top_k"):
        mi_assert.find_heads(handle, "induction", top_k=0)
    with pytest.raises(MiAssertInputError, match="n_ctx=64"):
        mi_assert.find_heads(handle, "induction", prompts=torch.zeros(2, 70, dtype=torch.long))


def test_confirm_checks_the_ranking_on_heldout_prompts_as_one_holm_family(planted):
    handle, truth = planted
    sinks = mi_assert.find_heads(handle, "bos", top_k=2)
    ev = check_invariants(sinks.confirm(handle))
    assert ev.passed and ev.composite.startswith("Holm") and len(ev.family) == 2
    assert ev.settings["split"] == "heldout"
    # one head too many: the third-ranked head is not a sink, the family fails without raising
    three = check_invariants(mi_assert.find_heads(handle, "bos", top_k=3).confirm(handle))
    assert not three.passed and [m.passed for m in three.family] == [True, True, False]
    single = check_invariants(mi_assert.find_heads(handle, "induction", top_k=1).confirm(handle))
    assert single.passed and single.composite == "single"
    assert set(truth.heads("induction")) == {tuple(map(int, single.settings["head"][1:].split("H")))}
