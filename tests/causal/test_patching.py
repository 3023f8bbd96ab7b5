"""assert_patching_recovery on the planted model: true claims pass, false claims raise."""

from __future__ import annotations

import pytest
import torch

import mi_assert
from mi_assert import ClaimFailed
from mi_assert.errors import MiAssertInputError, UnknownHookError


def test_induction_head_recovers_everything(planted_pairs):
    handle, gt, ps = planted_pairs
    ev = mi_assert.assert_patching_recovery(handle, ps.clean, ps.corrupted, gt.heads("induction"),
                                            mi_assert.logit_diff(ps.correct, ps.wrong),
                                            min_recovery=0.9)
    assert ev.passed and ev.estimate == pytest.approx(1.0, abs=0.02)
    assert ev.settings["direction"] == "denoise" and ev.settings["components"] == [
        "L{}H{}".format(*gt.heads("induction")[0])]
    assert "per_prompt" in ev.figures


@pytest.mark.parametrize("role", ["self", "uniform", "duplicate_token", "positional"])
def test_distractor_heads_recover_nothing(planted_pairs, role):
    handle, gt, ps = planted_pairs
    ev = mi_assert.assert_patching_recovery(handle, ps, components=gt.heads(role), max_recovery=0.05)
    assert abs(ev.estimate) < 0.02
    with pytest.raises(ClaimFailed, match="claim does not hold"):
        mi_assert.assert_patching_recovery(handle, ps, components=gt.heads(role))


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


def test_generator_prompts_draw_fresh_heldout_prompts_per_seed(planted):
    handle, gt = planted
    ev = mi_assert.assert_patching_recovery(handle, components=gt.heads("induction"),
                                            prompts="induction_pairs", seeds=[0, 1, 2],
                                            prompt_kwargs={"n_prompts": 8}, min_recovery=0.9)
    assert [s.seed for s in ev.per_seed] == [0, 1, 2] and ev.n == 24
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


def test_sites_patch_too(planted_pairs):
    handle, gt, ps = planted_pairs
    # the whole residual stream before layer 1 carries everything; attn0 output too
    for site in ["resid_pre1", "attn0", "blocks.1.hook_attn_out"]:
        ev = mi_assert.assert_patching_recovery(handle, ps, components=[site], min_recovery=0.9)
        assert ev.estimate == pytest.approx(1.0, abs=0.05)
    torch.testing.assert_close(torch.tensor(1.0), torch.tensor(1.0))
