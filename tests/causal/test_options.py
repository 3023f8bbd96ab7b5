"""Every causal claim validates its options through mi_assert.stats.options.claim_options."""

from __future__ import annotations

import pytest

import mi_assert
from mi_assert.errors import MiAssertInputError
from mi_assert.stats.options import claim_options


def _calls(gt, ps):
    circuit = gt.heads("previous_token") + gt.heads("induction")
    return {
        "patching": lambda h, **kw: mi_assert.assert_patching_recovery(h, ps, components=circuit, **kw),
        "ablation": lambda h, **kw: mi_assert.assert_ablation_effect(h, ps, circuit, **kw),
        "path": lambda h, **kw: mi_assert.assert_path_patching(
            h, ps, sender=circuit[0], receivers=circuit[1:], **kw),
        "faithfulness": lambda h, **kw: mi_assert.assert_circuit_faithfulness(h, ps, circuit, **kw),
        "completeness": lambda h, **kw: mi_assert.assert_circuit_completeness(h, ps, circuit, **kw),
        "minimality": lambda h, **kw: mi_assert.assert_circuit_minimality(h, ps, circuit, **kw),
    }


@pytest.mark.parametrize("claim", ["patching", "ablation", "path", "faithfulness",
                                   "completeness", "minimality"])
@pytest.mark.parametrize("option", [{"seeds": [0, 0]}, {"seeds": []}, {"alpha": 0.5},
                                    {"n_resamples": 10}, {"min_prompts": 1}])
def test_options_give_the_shared_message(planted_pairs, monkeypatch, claim, option):
    handle, gt, ps = planted_pairs
    with pytest.raises(MiAssertInputError) as expected:
        claim_options(**option)
    # the options are refused before any forward pass
    monkeypatch.setattr(handle, "forward", lambda *a, **k: pytest.fail("ran the model"))
    monkeypatch.setattr(handle, "run_with_cache", lambda *a, **k: pytest.fail("ran the model"))
    with pytest.raises(MiAssertInputError) as got:
        _calls(gt, ps)[claim](handle, **option)
    assert str(got.value) == str(expected.value)
    if option == {"seeds": [0, 0]}:
        assert "seeds must be distinct" in str(got.value)
