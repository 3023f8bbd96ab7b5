"""assert_patching_recovery on the planted model: true claims pass, false claims raise."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import mi_assert
from mi_assert import ClaimFailed
from mi_assert.causal import assertions, check_patching_recovery, measure_patching_recovery
from mi_assert.errors import MiAssertInputError, UnknownHookError
from mi_assert.prompts import PromptSet


def test_induction_head_recovers_everything(planted_pairs, evidence_ok):
    handle, gt, ps = planted_pairs
    ev = mi_assert.assert_patching_recovery(handle, ps.clean, ps.corrupted, gt.heads("induction"),
                                            mi_assert.logit_diff(ps.correct, ps.wrong),
                                            min_recovery=0.9)
    assert ev.passed and ev.estimate == pytest.approx(1.0, abs=0.02)
    assert ev.n == 16 and ev.unit == "prompts"
    assert ev.settings["direction"] == "denoise" and ev.settings["components"] == [
        "L{}H{}".format(*gt.heads("induction")[0])]
    assert "per_prompt" in ev.figures
    evidence_ok(ev)


@pytest.mark.parametrize("role", ["self", "uniform", "duplicate_token", "positional"])
def test_distractor_heads_recover_nothing(planted_pairs, role, evidence_ok):
    handle, gt, ps = planted_pairs
    ev = mi_assert.assert_patching_recovery(handle, ps, components=gt.heads(role), max_recovery=0.05)
    assert abs(ev.estimate) < 0.02
    evidence_ok(ev)
    with pytest.raises(ClaimFailed, match="claim does not hold") as info:
        mi_assert.assert_patching_recovery(handle, ps, components=gt.heads(role))
    evidence_ok(info.value.evidence)
    assert not info.value.evidence.passed


def test_noising_measures_necessity(planted_pairs):
    handle, gt, ps = planted_pairs
    ev = mi_assert.assert_patching_recovery(handle, ps, components=gt.heads("induction"),
                                            direction="noise", min_drop=0.9)
    assert ev.estimate == pytest.approx(1.0, abs=0.02)
    with pytest.raises(ClaimFailed):
        mi_assert.assert_patching_recovery(handle, ps, components=gt.heads("self"), direction="noise")
    with pytest.raises(MiAssertInputError, match="min_drop"):
        mi_assert.assert_patching_recovery(handle, ps, components=["L1H0"], direction="noise",
                                           min_recovery=0.5)


def test_positions_restrict_the_patch(planted_pairs):
    handle, gt, ps = planted_pairs
    # the induction head only matters at the final (metric) position
    ev = mi_assert.assert_patching_recovery(handle, ps, components=gt.heads("induction"),
                                            positions=[-1], min_recovery=0.9)
    assert ev.settings["positions"] == [ps.clean.shape[1] - 1]
    with pytest.raises(ClaimFailed):
        mi_assert.assert_patching_recovery(handle, ps, components=gt.heads("induction"), positions=[0, 1])
    with pytest.raises(MiAssertInputError, match="out of range"):
        mi_assert.assert_patching_recovery(handle, ps, components=gt.heads("induction"), positions=[99])


def test_generator_prompts_draw_fresh_heldout_prompts_per_seed(planted, evidence_ok):
    handle, gt = planted
    ev = mi_assert.assert_patching_recovery(handle, components=gt.heads("induction"),
                                            prompts="induction_pairs", seeds=[0, 1, 2],
                                            prompt_kwargs={"n_prompts": 8}, min_recovery=0.9)
    assert [s.seed for s in ev.per_seed] == [0, 1, 2]
    # the headline is the deciding (worst) seed's row: n counts its 8 distinct prompt pairs
    assert ev.n == 8 and all(s.n == 8 for s in ev.per_seed)
    assert ev.deciding in {s.name for s in ev.per_seed} and ev.envelope is not None
    worst = min(ev.per_seed, key=lambda s: s.bound)
    assert ev.bound == worst.bound
    evidence_ok(ev)
    with pytest.raises(MiAssertInputError, match="must be a name"):
        mi_assert.assert_patching_recovery(handle, components=["L1H0"], prompts="induction_pairs",
                                           metric=mi_assert.logit_diff(1, 2))
    with pytest.raises(MiAssertInputError, match="unknown prompt generator"):
        mi_assert.assert_patching_recovery(handle, components=["L1H0"], prompts="induction_pair")


def test_same_seed_same_evidence(planted_pairs):
    handle, gt, ps = planted_pairs
    a = mi_assert.assert_patching_recovery(handle, ps, components=gt.heads("previous_token"), seeds=[4])
    b = mi_assert.assert_patching_recovery(handle, ps, components=gt.heads("previous_token"), seeds=[4])
    assert (a.estimate, a.low, a.high, a.bound) == (b.estimate, b.low, b.high, b.bound)


def test_bad_inputs(planted_pairs):
    handle, gt, ps = planted_pairs
    metric = mi_assert.logit_diff(ps.correct, ps.wrong)
    with pytest.raises(MiAssertInputError, match="aligned token by token"):
        mi_assert.assert_patching_recovery(handle, ps.clean, ps.corrupted[:, :-1], ["L1H0"], metric)
    with pytest.raises(MiAssertInputError, match="batch sizes must match"):
        mi_assert.assert_patching_recovery(handle, ps.clean, ps.corrupted[:-1], ["L1H0"], metric)
    with pytest.raises(UnknownHookError, match="Did you mean"):
        mi_assert.assert_patching_recovery(handle, ps.clean, ps.corrupted, ["L1H0", "atn1"], metric)
    with pytest.raises(MiAssertInputError, match="one value per prompt"):
        mi_assert.assert_patching_recovery(handle, ps.clean, ps.corrupted, ["L1H0"],
                                           lambda logits: metric(logits).mean())
    with pytest.raises(MiAssertInputError, match="undefined"):  # corrupted == clean: no gap
        mi_assert.assert_patching_recovery(handle, ps.clean, ps.clean.clone(), ["L1H0"], metric)
    with pytest.raises(MiAssertInputError, match="not both"):
        mi_assert.assert_patching_recovery(handle, ps.clean, ps.corrupted, ["L1H0"], metric,
                                           min_recovery=0.5, max_recovery=0.9)
    with pytest.raises(MiAssertInputError, match="components is required"):
        mi_assert.assert_patching_recovery(handle, ps)
    with pytest.raises(MiAssertInputError, match="threshold must be a finite number"):
        mi_assert.assert_patching_recovery(handle, ps, components=["L1H0"], min_recovery=float("nan"))
    with pytest.raises(MiAssertInputError, match=r"alpha must be a number in \(0, 0.5\)"):
        mi_assert.assert_patching_recovery(handle, ps, components=["L1H0"], alpha=0.7)
    with pytest.raises(MiAssertInputError, match="quorum=3"):
        mi_assert.assert_patching_recovery(handle, ps, components=["L1H0"], seeds=[0, 1], quorum=3)
    with pytest.raises(MiAssertInputError, match="min_prompts must be an int >= 2"):
        mi_assert.assert_patching_recovery(handle, ps, components=["L1H0"], min_prompts=1)


def test_sites_patch_too(planted_pairs):
    handle, gt, ps = planted_pairs
    # the whole residual stream before layer 1 carries everything; attn0 output too
    for site in ["resid_pre1", "attn0", "blocks.1.hook_attn_out"]:
        ev = mi_assert.assert_patching_recovery(handle, ps, components=[site], min_recovery=0.9)
        assert ev.estimate == pytest.approx(1.0, abs=0.05)
    # patching the clean residual stream into layer 1 at every position *is* the clean run
    # from there on: the patched metric equals the clean metric prompt by prompt
    (run,) = measure_patching_recovery(handle, ps, components=["resid_pre1"]).runs
    torch.testing.assert_close(torch.from_numpy(run.patched), torch.from_numpy(run.clean))
    assert not np.allclose(run.corrupted, run.clean)


def test_measure_returns_plain_data_and_check_does_not_raise(planted_pairs, evidence_ok):
    handle, gt, ps = planted_pairs
    m = measure_patching_recovery(handle, ps, components=gt.heads("induction"), seeds=[0, 3])
    assert m.direction == "denoise" and m.n_prompts == 16 and [r.seed for r in m.runs] == [0, 3]
    for run in m.runs:
        assert run.clean.shape == run.corrupted.shape == run.patched.shape == (16,)
        assert len(set(run.units)) == 16
    num, den = m.runs[0].ratio_parts("denoise")
    ev = check_patching_recovery(handle, ps, components=gt.heads("induction"), seeds=[0])
    assert ev.estimate == pytest.approx(num.mean() / den.mean(), rel=1e-12)
    # a false claim comes back as failing Evidence, it does not raise
    false = check_patching_recovery(handle, ps, components=gt.heads("self"))
    assert not false.passed and evidence_ok(false)


def _repeat(ps: PromptSet, index: list[int]) -> PromptSet:
    return PromptSet(ps.clean[index], ps.corrupted[index], ps.correct[index], ps.wrong[index])


def test_duplicated_prompts_merge_and_too_few_distinct_are_refused(planted_pairs, evidence_ok):
    handle, gt, ps = planted_pairs
    comps = gt.heads("induction")
    # 16 distinct pairs plus 4 copies: n counts the 16 distinct pairs of the deciding row
    ev = mi_assert.assert_patching_recovery(handle, _repeat(ps, list(range(16)) + [0, 1, 2, 3]),
                                            components=comps, min_recovery=0.9)
    assert ev.n == 16 and ev.per_seed[0].n == 16
    evidence_ok(ev)
    # 4 distinct pairs, each 4 times: 16 rows but only 4 units
    few = _repeat(ps, [0, 1, 2, 3] * 4)
    with pytest.raises(MiAssertInputError,
                       match=r"4 distinct prompt pairs \(16 given, duplicates merged\).*min_prompts=8"):
        mi_assert.assert_patching_recovery(handle, few, components=comps)
    with pytest.raises(MiAssertInputError, match="4 distinct prompt pairs"):
        mi_assert.assert_path_patching(handle, few, sender=gt.heads("previous_token")[0],
                                       receivers=comps, receiver_input="k")
    # lowering min_prompts accepts them, and n is still the 4 distinct pairs
    ev = mi_assert.assert_patching_recovery(handle, few, components=comps, min_prompts=4)
    assert ev.n == 4


def test_worst_seed_decides(planted_pairs, monkeypatch, evidence_ok):
    handle, gt, ps = planted_pairs
    real = assertions._measure_patching

    def seed_1_recovers_nothing(*args, **kwargs):
        m = real(*args, **kwargs)
        runs = tuple(r if r.seed == 0 else type(r)(r.seed, r.clean, r.corrupted, r.corrupted.copy(), r.units)
                     for r in m.runs)
        return type(m)(**{**m.__dict__, "runs": runs})

    monkeypatch.setattr(assertions, "_measure_patching", seed_1_recovers_nothing)
    ev = check_patching_recovery(handle, ps, components=gt.heads("induction"), seeds=[0, 1])
    good, bad = ev.per_seed
    assert good.passed and not bad.passed and not ev.passed
    assert ev.deciding == "seed 1" and (ev.estimate, ev.bound) == (bad.estimate, bad.bound)
    evidence_ok(ev)
    with pytest.raises(ClaimFailed):
        mi_assert.assert_patching_recovery(handle, ps, components=gt.heads("induction"), seeds=[0, 1])
    # with a quorum of one seed the passing seed decides
    ev = check_patching_recovery(handle, ps, components=gt.heads("induction"), seeds=[0, 1], quorum=1)
    assert ev.passed and ev.deciding == "seed 0" and ev.bound == good.bound


def test_each_run_caches_only_what_the_claim_reads(planted_pairs):
    """Three forward passes per prompt set: the source run caches exactly the patched hooks, the
    target run and the patched run cache nothing, and nothing records autograd."""
    from unittest import mock

    from mi_assert import cost

    handle, gt, ps = planted_pairs
    heads = gt.heads("induction")
    calls: list[tuple[str, ...]] = []
    real = handle.run_with_cache

    def spy(tokens, hooks=(), *args, **kwargs):
        calls.append(tuple(hooks))
        assert not torch.is_grad_enabled()
        return real(tokens, hooks, *args, **kwargs)

    start = cost.snapshot()
    with mock.patch.object(handle, "run_with_cache", spy):
        m = measure_patching_recovery(handle, prompts=ps, components=heads)
    patched = tuple(sorted({f"blocks.{layer}.attn.hook_z" for layer, _ in heads}))
    assert calls == [patched, ()]
    assert m.hooks == patched
    assert cost.between(start, cost.snapshot())["forward_passes"] == 3
