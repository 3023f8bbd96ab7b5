"""assert_ablation_effect and assert_path_patching on the planted model."""

from __future__ import annotations

import pytest

import mi_assert
from mi_assert import ClaimFailed
from mi_assert.errors import MiAssertInputError


@pytest.mark.parametrize("method", ["mean", "zero", "resample"])
def test_ablating_the_induction_head_drops_the_metric(planted_pairs, method):
    handle, gt, ps = planted_pairs
    ev = mi_assert.assert_ablation_effect(handle, ps, gt.heads("induction"), method=method, min_drop=0.5)
    assert ev.settings["ablation"] == method
    with pytest.raises(ClaimFailed):
        mi_assert.assert_ablation_effect(handle, ps, gt.heads("induction"), method=method, max_drop=0.3)


@pytest.mark.parametrize("method", ["mean", "zero", "resample"])
def test_ablating_a_distractor_changes_nothing(planted_pairs, method):
    handle, gt, ps = planted_pairs
    mi_assert.assert_ablation_effect(handle, ps, gt.heads("self"), method=method, max_drop=0.05)
    with pytest.raises(ClaimFailed):
        mi_assert.assert_ablation_effect(handle, ps, gt.heads("self"), method=method)


def test_noise_ablation_scales(planted_pairs):
    handle, gt, ps = planted_pairs
    prev = gt.heads("previous_token")
    # noise in the previous-token head scrambles the induction head's keys once it is large
    # compared with the head's (sparse, one-hot) output; at 1% of its std nothing happens
    mi_assert.assert_ablation_effect(handle, ps, prev, method="noise", noise_scale=8.0, min_drop=0.2)
    mi_assert.assert_ablation_effect(handle, ps, prev, method="noise", noise_scale=0.01, max_drop=0.01)
    with pytest.raises(ClaimFailed):
        mi_assert.assert_ablation_effect(handle, ps, prev, method="noise", noise_scale=0.01, min_drop=0.2)


def test_ablation_reference_and_bad_inputs(planted_pairs):
    handle, gt, ps = planted_pairs
    ev = mi_assert.assert_ablation_effect(handle, ps, gt.heads("induction"), reference="corrupted")
    assert ev.settings["reference"] == "the corrupted prompts"
    with pytest.raises(MiAssertInputError, match="method"):
        mi_assert.assert_ablation_effect(handle, ps, gt.heads("induction"), method="mean_")
    with pytest.raises(MiAssertInputError, match="same length"):
        mi_assert.assert_ablation_effect(handle, ps, gt.heads("induction"), reference=ps.clean[:, :-2])


def test_path_prev_token_to_induction_via_k_carries_the_effect(planted_pairs):
    handle, gt, ps = planted_pairs
    prev, ind = gt.heads("previous_token")[0], gt.heads("induction")
    ev = mi_assert.assert_path_patching(handle, ps, sender=prev, receivers=ind,
                                        receiver_input="k", min_recovery=0.9)
    assert ev.settings["receiver_input"] == "k"
    for via in ("q", "v"):
        ev = mi_assert.assert_path_patching(handle, ps, sender=prev, receivers=ind,
                                            receiver_input=via, max_recovery=0.05)
        assert abs(ev.estimate) < 0.02
        with pytest.raises(ClaimFailed):
            mi_assert.assert_path_patching(handle, ps, sender=prev, receivers=ind, receiver_input=via)
    mi_assert.assert_path_patching(handle, ps, sender=prev, receivers=ind, receiver_input="resid",
                                   min_recovery=0.7)


def test_direct_path_to_logits(planted_pairs):
    handle, gt, ps = planted_pairs
    mi_assert.assert_path_patching(handle, ps, sender=gt.heads("induction")[0], receivers="logits",
                                   min_recovery=0.9)
    # the previous-token head has no direct effect on the logits: it acts through the induction head
    mi_assert.assert_path_patching(handle, ps, sender=gt.heads("previous_token")[0],
                                   receivers="logits", max_recovery=0.05)


def test_path_patching_bad_inputs(planted_pairs):
    handle, gt, ps = planted_pairs
    with pytest.raises(MiAssertInputError, match="no path"):
        mi_assert.assert_path_patching(handle, ps, sender="L1H0", receivers=["L0H1"])
    with pytest.raises(MiAssertInputError, match="receiver_input"):
        mi_assert.assert_path_patching(handle, ps, sender="L0H0", receivers=["L1H0"], receiver_input="z")
    with pytest.raises(MiAssertInputError, match="must be attention heads"):
        mi_assert.assert_path_patching(handle, ps, sender="L0H0", receivers=["attn1"])


def test_zero_ablation_needs_no_forward_and_zeroes_only_the_slot(planted_pairs, monkeypatch):
    import torch

    from mi_assert.causal.components import parse_components
    from mi_assert.causal.interventions import ablation_sources, edits_for

    handle, gt, ps = planted_pairs
    comps = parse_components(handle, gt.heads("induction"))
    monkeypatch.setattr(handle, "run_with_cache", lambda *a, **k: pytest.fail("zero ablation ran a forward"))
    sources = ablation_sources(handle, ps.clean, comps, "zero")
    monkeypatch.undo()
    act = torch.randn(ps.clean.shape[0], ps.clean.shape[1], handle.n_heads, handle.d_head)
    out = act
    for edit in edits_for(comps, sources)[comps[0].hook]:
        out = edit(out)
    heads = [c.head for c in comps]
    others = [h for h in range(handle.n_heads) if h not in heads]
    assert (out[:, :, heads] == 0).all() and torch.equal(out[:, :, others], act[:, :, others])


def test_measure_ablation_effect_and_check(planted_pairs, evidence_ok):
    from mi_assert.causal import check_ablation_effect, measure_ablation_effect

    handle, gt, ps = planted_pairs
    m = measure_ablation_effect(handle, ps, gt.heads("induction"), method="zero", seeds=[0, 2])
    assert m.method == "zero" and [r.seed for r in m.runs] == [0, 2]
    run = m.runs[0]
    assert run.full.shape == run.ablated.shape == (16,) and len(set(run.units)) == 16
    ev = check_ablation_effect(handle, ps, gt.heads("induction"), method="zero", seeds=[0])
    assert ev.estimate == pytest.approx((run.full - run.ablated).mean() / run.full.mean(), rel=1e-12)
    evidence_ok(ev)
    false = check_ablation_effect(handle, ps, gt.heads("self"), method="zero")
    assert not false.passed and evidence_ok(false)


def test_ablation_worst_seed_decides(planted_pairs, monkeypatch, evidence_ok):
    from mi_assert.causal import assertions, check_ablation_effect

    handle, gt, ps = planted_pairs
    real = assertions._measure_ablation

    def seed_1_drops_nothing(*args, **kwargs):
        m = real(*args, **kwargs)
        runs = tuple(r if r.seed == 0 else type(r)(r.seed, r.full, r.full.copy(), r.units)
                     for r in m.runs)
        return type(m)(**{**m.__dict__, "runs": runs})

    monkeypatch.setattr(assertions, "_measure_ablation", seed_1_drops_nothing)
    ev = check_ablation_effect(handle, ps, gt.heads("induction"), seeds=[0, 1])
    good, bad = ev.per_seed
    assert good.passed and not bad.passed and not ev.passed and ev.deciding == "seed 1"
    assert ev.bound == bad.bound
    evidence_ok(ev)
    with pytest.raises(ClaimFailed):
        mi_assert.assert_ablation_effect(handle, ps, gt.heads("induction"), seeds=[0, 1])


def test_check_path_patching_does_not_raise(planted_pairs, evidence_ok):
    from mi_assert.causal import check_path_patching

    handle, gt, ps = planted_pairs
    prev, ind = gt.heads("previous_token")[0], gt.heads("induction")
    ev = check_path_patching(handle, ps, sender=prev, receivers=ind, receiver_input="q", seeds=[0, 1])
    # the same 16 pairs under two seeds: one row of 16 (seed 1 only adds resamples)
    assert not ev.passed and ev.n == 16 and [r.seed for r in ev.per_seed] == [0]
    assert "seed 1 resamples the same data as seed 0" in ev.details["seeds_sharing_data"]
    evidence_ok(ev)
