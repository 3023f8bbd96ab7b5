"""Circuit faithfulness, completeness and minimality on the planted induction circuit."""

from __future__ import annotations

import pytest

import mi_assert
from mi_assert import ClaimFailed
from mi_assert.causal import (
    CircuitRunner,
    check_circuit_completeness,
    check_circuit_faithfulness,
    check_circuit_minimality,
)
from mi_assert.errors import MiAssertInputError
from mi_assert.prompts import PromptSet


def _circuit(gt):
    return gt.heads("previous_token") + gt.heads("induction")


def _subset(ps, index):
    return PromptSet(ps.clean[index], ps.corrupted[index], ps.correct[index], ps.wrong[index])


@pytest.mark.parametrize("ablation", ["mean", "resample"])
def test_faithfulness(planted_pairs, ablation, evidence_ok):
    handle, gt, ps = planted_pairs
    ev = mi_assert.assert_circuit_faithfulness(handle, ps, _circuit(gt), min_faithfulness=0.9,
                                               ablation=ablation)
    assert ev.settings["ablation"] == ablation and ev.settings["metric"] == "logit_diff@-1"
    assert ev.n == 16
    evidence_ok(ev)
    # the induction head alone is not faithful: it needs the previous-token head's keys
    with pytest.raises(ClaimFailed) as info:
        mi_assert.assert_circuit_faithfulness(handle, ps, gt.heads("induction"), ablation=ablation)
    evidence_ok(info.value.evidence)
    false = check_circuit_faithfulness(handle, ps, gt.heads("induction"), ablation=ablation)
    assert not false.passed and false.estimate == info.value.evidence.estimate


def test_completeness(planted_pairs, evidence_ok):
    handle, gt, ps = planted_pairs
    ev = mi_assert.assert_circuit_completeness(handle, ps, _circuit(gt), n_subsets=2)
    assert len(ev.family) == 2 and all(m.passed for m in ev.family)
    # two one-sided members (gap < max_gap from above and from below), one row per K
    assert {m.alternative for m in ev.family} == {"less"}
    upper, lower = ev.family
    assert [r.label for r in upper.per_seed] == [r.label for r in lower.per_seed]
    assert len(upper.per_seed) >= 2  # at least K = {} and K = C
    for a, b in zip(upper.per_seed, lower.per_seed, strict=True):
        assert a.estimate == pytest.approx(-b.estimate)
    assert ev.n == 16 and ev.deciding in {upper.claim, lower.claim}
    evidence_ok(ev)
    with pytest.raises(ClaimFailed) as info:
        mi_assert.assert_circuit_completeness(handle, ps, gt.heads("induction"), n_subsets=2)
    evidence_ok(info.value.evidence)
    false = check_circuit_completeness(handle, ps, gt.heads("induction"), n_subsets=2)
    assert not false.passed and not all(m.passed for m in false.family)
    with pytest.raises(MiAssertInputError, match="max_gap must be a finite number > 0"):
        check_circuit_completeness(handle, ps, _circuit(gt), max_gap=0)


def test_minimality(planted_pairs, evidence_ok):
    handle, gt, ps = planted_pairs
    ev = mi_assert.assert_circuit_minimality(handle, ps, _circuit(gt), n_subsets=2)
    assert len(ev.family) == 2
    # each member is tested on the other half of the prompts: 8 distinct of 16
    assert ev.n == 8 and all(m.n == 8 for m in ev.family)
    evidence_ok(ev)
    with pytest.raises(ClaimFailed, match="is not needed") as info:
        mi_assert.assert_circuit_minimality(handle, ps, _circuit(gt) + gt.heads("self"), n_subsets=2)
    failed = info.value.evidence
    evidence_ok(failed)
    assert failed.deciding.startswith("L{}H{}".format(*gt.heads("self")[0]))
    false = check_circuit_minimality(handle, ps, _circuit(gt) + gt.heads("self"), n_subsets=2)
    assert not false.passed and len(false.family) == 3


def test_minimality_needs_min_prompts_in_its_test_half(planted_pairs):
    handle, gt, ps = planted_pairs
    with pytest.raises(MiAssertInputError,
                       match=r"test half has 7 distinct prompts.*min_prompts=8.*at least 16"):
        check_circuit_minimality(handle, _subset(ps, list(range(14))), _circuit(gt), n_subsets=1)
    ev = check_circuit_minimality(handle, _subset(ps, list(range(14))), _circuit(gt), n_subsets=1,
                                  min_prompts=7)
    assert ev.n == 7
    # copies of a prompt stay in one half: 16 distinct + 4 copies still tests 8 distinct
    ev = check_circuit_minimality(handle, _subset(ps, list(range(16)) + [0, 1, 2, 3]),
                                  _circuit(gt), n_subsets=1)
    assert ev.n == 8


def test_circuit_claims_refuse_duplicated_prompts(planted_pairs):
    handle, gt, ps = planted_pairs
    few = _subset(ps, [0, 1, 2, 3] * 4)
    for check in (check_circuit_faithfulness, check_circuit_completeness):
        with pytest.raises(MiAssertInputError,
                           match=r"4 distinct prompts \(16 given, duplicates merged\).*min_prompts=8"):
            check(handle, few, _circuit(gt))


def test_circuit_worst_seed_decides(planted, monkeypatch, evidence_ok):
    handle, gt = planted
    real = CircuitRunner.F

    def seed_1_circuit_loses_most(self, kept):
        out = real(self, kept)
        if self.draw.seed == 1 and frozenset(kept) != frozenset(self.nodes):
            return 0.3 * out
        return out

    monkeypatch.setattr(CircuitRunner, "F", seed_1_circuit_loses_most)
    common = {"prompts": "induction_pairs", "seeds": [0, 1], "prompt_kwargs": {"n_prompts": 8}}
    ev = check_circuit_faithfulness(handle, circuit=_circuit(gt), min_faithfulness=0.9, **common)
    good, bad = ev.per_seed
    assert good.passed and not bad.passed and not ev.passed and ev.deciding == "seed 1"
    assert ev.estimate == bad.estimate and ev.n == 8
    evidence_ok(ev)
    with pytest.raises(ClaimFailed):
        mi_assert.assert_circuit_faithfulness(handle, circuit=_circuit(gt), min_faithfulness=0.9,
                                              **common)
    ev = check_circuit_completeness(handle, circuit=_circuit(gt), n_subsets=1, **common)
    assert not ev.passed
    decider = next(m for m in ev.family if m.claim == ev.deciding)
    assert decider.deciding.startswith("seed 1")
    assert all(r.passed for m in ev.family for r in m.per_seed if r.seed == 0)
    evidence_ok(ev)
