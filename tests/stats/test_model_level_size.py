"""Model-level claims near their threshold, on planted models whose true effect is set.

The calibration tests elsewhere use planted effects far from the thresholds (scores 1.0 vs 0.4),
which any interval gets right. Here each family's planted model has a known true value T
(``mi_assert/zoo/planted_effects.py``) and each claim is checked a few standard errors (SE, at
the claim's sample size) on either side of T: a claim whose threshold lies ``margin`` on the
easy side of the truth must pass, one ``margin`` on the wrong side must fail, in both directions
where the family has ``max_*`` claims. Margins are about 5 SE: near enough that a badly biased
estimate or an interval several SE too wide or too narrow breaks them, far enough that a
correct engine passes whatever its resampling seed (a miss has probability < 1e-3 per check).
Rates at the threshold itself: ``scripts/model_size.py`` (docs/model_size.md).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mi_assert.causal.assertions import check_patching_recovery, measure_patching_recovery
from mi_assert.causal.attribution import check_direct_logit_attribution
from mi_assert.heads.assertions import check_induction_head
from mi_assert.heads.scores import attention_scores
from mi_assert.prompts.pairs import induction_pairs
from mi_assert.sae.assertions import check_sae_reconstruction
from mi_assert.zoo import planted_effects as pe

# ----- heads: induction score 0.4 (the default threshold) ---------------------------------------
#: p_mean whose induction score at repeat length 16 is 0.4 (pe.solve_p_mean(0.4, 0.3, 16))
HEADS_P_MEAN = 0.36275
HEADS_TRUTH = 0.4
#: per-prompt sd of the score is 0.0555, so SE = 0.0098 at 32 prompts; margin = 5 SE
HEADS_MARGIN = 0.05
HEADS_OPTS = {"repeat_lens": (16,), "vocab_fraction": 1.0, "n_prompts": 32}


@pytest.fixture(scope="module")
def graded_heads():
    torch.manual_seed(0)
    p = pe.graded_p(HEADS_P_MEAN, 0.3)
    return p, pe.graded_induction_model(p, seed=3)


def test_induction_truth_formula_matches_the_model(graded_heads):
    p, handle = graded_heads
    layer, head = handle.meta["ground_truth"].heads("induction")[0]
    prompts = pe.sample_repeated(64, 16, seed=5)
    scores, _ = attention_scores(handle, ["induction"], torch.tensor(prompts), batch_size=64)
    formula = pe.InductionRows.of(prompts).scores(p)
    assert np.abs(scores["induction"][:, layer, head].numpy() - formula).max() < 1e-5
    truth, se = pe.induction_truth(p, 16, n_prompts=40_000, seed=77)
    assert abs(truth - HEADS_TRUTH) < 4 * se + 2e-4


@pytest.mark.parametrize("seed", [0, 1])
def test_induction_head_near_its_true_score(graded_heads, seed):
    _, handle = graded_heads
    head = handle.meta["ground_truth"].heads("induction")[0]
    easy = check_induction_head(handle, *head, seeds=[seed], threshold=HEADS_TRUTH - HEADS_MARGIN,
                                **HEADS_OPTS)
    hard = check_induction_head(handle, *head, seeds=[seed], threshold=HEADS_TRUTH + HEADS_MARGIN,
                                **HEADS_OPTS)
    assert easy.passed, easy
    assert not hard.passed, hard
    assert abs(easy.estimate - HEADS_TRUTH) < 4 * 0.0098


# ----- causal: head a carries exactly half of the logit difference -------------------------------
CAUSAL_TRUTH = 0.5
N_PAIRS = 64
#: SE at 64 pairs: patching recovery 0.0189, DLA share 0.027 (scripts/model_size.py causal_se)
PATCH_MARGIN, DLA_MARGIN = 0.1, 0.135


@pytest.fixture(scope="module")
def split_model():
    scale = np.ones(64)
    scale[1:] = 1.0 + 0.5 * pe.spread(63, 1)
    gain = pe.split_gain(CAUSAL_TRUTH, 0.35, scale, seed=2)
    assert pe.split_truth(gain, scale) == pytest.approx(CAUSAL_TRUTH, abs=1e-12)
    handle = pe.split_induction_model(gain, scale, seed=1)
    return handle, handle.meta["ground_truth"].heads("induction_a")[0]


def test_split_recovery_is_the_planted_share(split_model):
    handle, a = split_model
    m = measure_patching_recovery(handle, components=[a], prompts="induction_pairs", seeds=[9],
                                  prompt_kwargs={"n_prompts": 400})
    num, den = m.runs[0].ratio_parts("denoise")
    per_pair = num / den  # (g_c s_c + g_w s_w) / (s_c + s_w), between the gains' extremes
    assert 0.1 < per_pair.min() and per_pair.max() < 0.9 and per_pair.std() > 0.05
    assert num.mean() / den.mean() == pytest.approx(CAUSAL_TRUTH, abs=4 * 0.0189 * (64 / 400) ** 0.5)


@pytest.mark.parametrize("direction", ["greater", "less"])
def test_patching_recovery_near_the_planted_share(split_model, direction):
    handle, a = split_model
    kw = {"components": [a], "prompts": "induction_pairs", "seeds": [4],
          "prompt_kwargs": {"n_prompts": N_PAIRS}}
    if direction == "greater":
        easy = check_patching_recovery(handle, min_recovery=CAUSAL_TRUTH - PATCH_MARGIN, **kw)
        hard = check_patching_recovery(handle, min_recovery=CAUSAL_TRUTH + PATCH_MARGIN, **kw)
    else:
        easy = check_patching_recovery(handle, max_recovery=CAUSAL_TRUTH + PATCH_MARGIN, **kw)
        hard = check_patching_recovery(handle, max_recovery=CAUSAL_TRUTH - PATCH_MARGIN, **kw)
    assert easy.passed, easy
    assert not hard.passed, hard


def test_direct_logit_attribution_near_the_planted_share(split_model):
    handle, a = split_model
    ps = induction_pairs(handle, seed=21, n_prompts=N_PAIRS)
    args = (handle, ps.clean, [a], ps.correct, ps.wrong)
    easy = check_direct_logit_attribution(*args, min_share=CAUSAL_TRUTH - DLA_MARGIN, seeds=[0])
    hard = check_direct_logit_attribution(*args, min_share=CAUSAL_TRUTH + DLA_MARGIN, seeds=[0])
    assert easy.passed, easy
    assert not hard.passed, hard


# ----- SAE: explained variance 0.7, its MSE, 4 dead latents of 40 --------------------------------
N_ROWS = 128
#: SE at 128 rows: EV 0.0054, MSE 0.0215 (scripts/model_size.py sae_moments); margins ~5.5 SE
EV_MARGIN, MSE_MARGIN = 0.03, 0.11


@pytest.fixture(scope="module")
def graded():
    gs = pe.graded_sae(0.7, n_dead=4, n_spare=4)
    return gs, gs.sae()


def test_graded_sae_truths_are_exact(graded):
    gs, sae = graded
    assert gs.explained_variance == pytest.approx(0.7, abs=1e-12)
    x = gs.sample(100_000, seed=1).double()
    with torch.no_grad():
        recon = sae.decode(sae.encode(x.float())).double()
    err = (x - recon).pow(2).sum(-1)
    dev = (x - x.mean(0)).pow(2).sum(-1)
    assert float(1 - err.sum() / dev.sum()) == pytest.approx(0.7, abs=3e-3)
    assert float(err.mean()) == pytest.approx(gs.mse, rel=1e-2)
    fired = (sae.encode(x[:2000].float()) != 0).any(0)
    assert int((~fired).sum()) == 4 and gs.dead_fraction == 0.1


@pytest.mark.parametrize("seed", [0, 1])
def test_sae_claims_near_their_true_values(graded, seed):
    gs, sae = graded
    x = gs.sample(N_ROWS, seed=100 + seed)

    def check(**kw):
        return check_sae_reconstruction(sae, activations=x, seeds=[seed], **kw)

    assert check(min_explained_variance=0.7 - EV_MARGIN).passed
    assert not check(min_explained_variance=0.7 + EV_MARGIN).passed
    assert check(max_mse=gs.mse + MSE_MARGIN).passed
    assert not check(max_mse=gs.mse - MSE_MARGIN).passed
    # the dead-fraction bound is exact: at the true fraction it cannot pass, one latent above can
    assert not check(max_dead_fraction=gs.dead_fraction).passed
    assert check(max_dead_fraction=gs.dead_fraction + 1 / gs.d_sae).passed
