"""Circuit faithfulness, completeness and minimality on the planted induction circuit."""

from __future__ import annotations

import pytest

import mi_assert
from mi_assert import ClaimFailed


def _circuit(gt):
    return gt.heads("previous_token") + gt.heads("induction")


@pytest.mark.parametrize("ablation", ["mean", "resample"])
def test_faithfulness(planted_pairs, ablation):
    handle, gt, ps = planted_pairs
    ev = mi_assert.assert_circuit_faithfulness(handle, ps, _circuit(gt), min_faithfulness=0.9,
                                               ablation=ablation)
    assert ev.settings["ablation"] == ablation and ev.settings["metric"] == "logit_diff@-1"
    # the induction head alone is not faithful: it needs the previous-token head's keys
    with pytest.raises(ClaimFailed):
        mi_assert.assert_circuit_faithfulness(handle, ps, gt.heads("induction"), ablation=ablation)


def test_completeness(planted_pairs):
    handle, gt, ps = planted_pairs
    ev = mi_assert.assert_circuit_completeness(handle, ps, _circuit(gt), n_subsets=2)
    assert ev.family and all(m.passed for m in ev.family)
    with pytest.raises(ClaimFailed):
        mi_assert.assert_circuit_completeness(handle, ps, gt.heads("induction"), n_subsets=2)


def test_minimality(planted_pairs):
    handle, gt, ps = planted_pairs
    ev = mi_assert.assert_circuit_minimality(handle, ps, _circuit(gt), n_subsets=2)
    assert len(ev.family) == 2
    with pytest.raises(ClaimFailed, match="is not needed"):
        mi_assert.assert_circuit_minimality(handle, ps, _circuit(gt) + gt.heads("self"), n_subsets=2)
