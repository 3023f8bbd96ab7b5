"""IOI circuit claims for each training seed of ioi-small.

The circuit is discovered on fit prompts/templates (ioi_discovery.py) and then stated as claims
checked on *held-out templates* (``prompts="ioi"`` draws ``make_split(...).heldout`` per seed,
which uses templates the model never trained on). Thresholds are fixed up front:

* patching the circuit's heads (denoise, ABC corruption) recovers > 50% of the logit difference;
* the circuit is faithful: with every other head mean-ablated over the ABC distribution
  (Wang et al.'s ablation), it keeps > 50% of the full model's logit difference;
* the circuit is minimal: every head has some K with a marginal effect > 1% of F(M).
"""

from __future__ import annotations

import pytest

import mi_assert

#: Measured on the committed checkpoints (2026-11-22), kept as strict xfails so a retrained model
#: that fixes them makes the run fail until the marker is removed. These tiny models spread IOI
#: over most heads: for s2 the fit-prompt pruning drops every layer-0 head, and held-out
#: faithfulness shows they were needed (0.58, bound 0.47 < 0.5); for s1 and s2 some discovered
#: heads have no subset K with a marginal effect above 1% of F(M) on held-out templates.
KNOWN_WEAK = {
    ("ioi-small@s2", "faithful"): "s2: held-out faithfulness 0.58 (bound 0.47) < 0.5 after pruning",
    ("ioi-small@s1", "minimal"): "s1: 1 of 8 discovered heads fails minimality on held-out templates",
    ("ioi-small@s2", "minimal"): "s2: 2 of 5 discovered heads fail minimality on held-out templates",
}


def _expect_known_weak(request: pytest.FixtureRequest, spec: str, claim: str) -> None:
    reason = KNOWN_WEAK.get((spec, claim))
    if reason is not None:
        request.applymarker(pytest.mark.xfail(strict=True, raises=AssertionError, reason=reason))


HELDOUT = {"prompts": "ioi", "seeds": [0, 1], "prompt_kwargs": {"n_prompts": 48, "corruption": "abc"}}


def test_circuit_recovers_the_logit_difference(ioi_small, ioi_circuit):
    ev = mi_assert.assert_patching_recovery(ioi_small, components=ioi_circuit.heads,
                                            min_recovery=0.5, **HELDOUT)
    print(ev)


def test_random_heads_do_not(ioi_small, ioi_circuit):
    """The same number of heads from outside the circuit does not recover half the effect."""
    import torch

    outside = [(la, h) for la in range(ioi_small.n_layers) for h in range(ioi_small.n_heads)
               if (la, h) not in ioi_circuit.heads]
    if len(outside) < len(ioi_circuit.heads):
        pytest.skip("the circuit covers most heads; no disjoint control set")
    pick = torch.randperm(len(outside), generator=torch.Generator().manual_seed(0))
    control = [outside[int(i)] for i in pick[: len(ioi_circuit.heads)]]
    with pytest.raises(AssertionError):
        mi_assert.assert_patching_recovery(ioi_small, components=control, min_recovery=0.5, **HELDOUT)


def test_circuit_is_faithful(request, ioi_small, ioi_circuit):
    _expect_known_weak(request, ioi_small.spec, "faithful")
    mi_assert.assert_circuit_faithfulness(
        ioi_small, "ioi", ioi_circuit.heads, min_faithfulness=0.5, ablation="mean",
        reference="corrupted", seeds=[0], prompt_kwargs={"n_prompts": 48, "corruption": "abc"})


def test_circuit_is_minimal(request, ioi_small, ioi_circuit):
    _expect_known_weak(request, ioi_small.spec, "minimal")
    mi_assert.assert_circuit_minimality(
        ioi_small, "ioi", ioi_circuit.heads, min_effect=0.01, ablation="mean",
        reference="corrupted", n_subsets=3, seeds=[0],
        prompt_kwargs={"n_prompts": 48, "corruption": "abc"})
