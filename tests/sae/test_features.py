"""Feature recovery, firing and steering claims, each tested both ways on known ground truth."""

from __future__ import annotations

import pytest
import torch

from mi_assert import (
    ClaimFailed,
    assert_feature_fires,
    assert_feature_recovery,
    assert_feature_steering,
)
from mi_assert.sae.synthetic import random_sae, shuffled_decoder_sae, true_sae

V, C = 64, 64  # planted model: vocab and context; residual = [tok | pos | prev | out | junk]
TOK, OUT, JUNK = 0, 2 * V + C, 3 * V + C


# ----- recovery ---------------------------------------------------------------------------
def test_true_dictionary_recovers_every_feature(synth):
    data, _ = synth
    ev = assert_feature_recovery(true_sae(data), data.features)
    assert ev.estimate == pytest.approx(1.0, abs=1e-5) and ev.n == data.config.n_features


def test_shuffled_decoder_keeps_mmcs(synth):
    # permuting decoder rows keeps the set of directions: recovery holds, reconstruction fails
    data, _ = synth
    assert assert_feature_recovery(shuffled_decoder_sae(true_sae(data), 1), data).passed


def test_random_sae_fails_recovery(synth):
    data, _ = synth
    with pytest.raises(ClaimFailed) as err:
        assert_feature_recovery(random_sae(data.config.d, data.config.n_features, seed=1), data)
    assert err.value.evidence.estimate < 0.5


def test_noisy_dictionary_between_thresholds(synth):
    # decoder = true features + noise of cosine about 0.8: passes 0.7, fails 0.9
    data, _ = synth
    sae = true_sae(data)
    gen = torch.Generator().manual_seed(0)
    noise = torch.randn(sae.W_dec.shape, generator=gen)
    noise = noise / noise.norm(dim=-1, keepdim=True) * 0.75
    with torch.no_grad():
        sae.W_dec.add_(noise)
    assert assert_feature_recovery(sae, data, min_mmcs=0.7).passed
    with pytest.raises(ClaimFailed):
        assert_feature_recovery(sae, data, min_mmcs=0.9)


# ----- firing -----------------------------------------------------------------------------
def _prompts(contains: int | None, avoid: int, n: int, seed: int) -> torch.Tensor:
    """BOS + 12 random tokens (never ``avoid``); ``contains`` planted at a random position."""
    gen = torch.Generator().manual_seed(seed)
    vocab = torch.tensor([t for t in range(1, V) if t not in (avoid, contains)])
    toks = vocab[torch.randint(0, len(vocab), (n, 12), generator=gen)]
    if contains is not None:
        where = torch.randint(0, 12, (n,), generator=gen)
        toks[torch.arange(n), where] = contains
    return torch.cat([torch.zeros(n, 1, dtype=torch.long), toks], dim=1)


def test_token_latent_fires_on_its_token(planted_model, basis):
    pos, neg = _prompts(5, 5, 24, seed=1), _prompts(None, 5, 24, seed=2)
    # perfect separation, 24 per class: no spread, so the bound is 0.05^(1/24) = 0.883
    ev = assert_feature_fires(basis, planted_model, pos, neg, feature=TOK + 5, min_auroc=0.85)
    assert ev.estimate == pytest.approx(1.0) and ev.bound == pytest.approx(0.05 ** (1 / 24))
    assert ev.settings["feature"] == TOK + 5 and ev.model["spec"] == "planted-induction@s0"


def test_other_token_latent_does_not_separate(planted_model, basis):
    # latent for token 7 on prompts split by token 5: both groups hold 7 at the same rate
    pos, neg = _prompts(5, 5, 24, seed=1), _prompts(None, 5, 24, seed=2)
    with pytest.raises(ClaimFailed) as err:
        assert_feature_fires(basis, planted_model, pos, neg, feature=TOK + 7, min_auroc=0.9)
    assert err.value.evidence.estimate < 0.8


def test_fires_at_a_position(planted_model, basis):
    pos, neg = _prompts(5, 5, 24, seed=1), _prompts(None, 5, 24, seed=2)
    pos[:, 3] = 5
    ev = assert_feature_fires(basis, planted_model, pos, neg, feature=TOK + 5, position=3,
                              min_auroc=0.85)
    assert ev.settings["score"] == "position 3"


# ----- steering ---------------------------------------------------------------------------
def _logit_of(token: int):
    def metric(logits: torch.Tensor) -> torch.Tensor:
        return logits[:, -1, token]

    metric.position = -1  # type: ignore[attr-defined]
    return metric


@pytest.fixture(scope="module")
def final_basis(planted_model):
    from mi_assert.sae.synthetic import basis_sae

    return basis_sae(planted_model.d_model, "blocks.1.hook_resid_post")


def test_steering_output_latent_raises_its_logit(planted_model, repeated, final_basis):
    # W_U reads the 'out' one-hot of token 7 with weight 10: scale 1 adds about 10 to its logit
    ev = assert_feature_steering(final_basis, planted_model, repeated, feature=OUT + 7,
                                 metric=_logit_of(7), scale=1.0, min_effect=5.0)
    assert ev.estimate == pytest.approx(10.0, rel=0.05)


def test_steering_a_junk_latent_moves_nothing(planted_model, repeated, final_basis):
    with pytest.raises(ClaimFailed) as err:
        assert_feature_steering(final_basis, planted_model, repeated, feature=JUNK + 1,
                                metric=_logit_of(7), scale=1.0, min_effect=1.0)
    assert abs(err.value.evidence.estimate) < 0.1


# ----- evidence, options, non-raising checks --------------------------------------------------
def test_recovery_evidence_reads_true_both_ways(synth):
    from mi_assert.sae import check_feature_recovery
    from tests.evidence_contract import check_evidence as assert_consistent

    data, _ = synth
    good = check_feature_recovery(true_sae(data), data)
    bad = check_feature_recovery(random_sae(data.config.d, data.config.n_features, seed=1), data)
    assert good.passed and not bad.passed  # check_* returns, never raises on a failed claim
    assert good.unit == "features" and good.n == data.config.n_features
    assert_consistent(good)
    assert_consistent(bad)


def test_seed_is_an_alias_of_seeds(synth):
    from mi_assert import MiAssertInputError
    from mi_assert.sae import check_feature_recovery

    data, _ = synth
    sae = true_sae(data)
    assert check_feature_recovery(sae, data, seed=3).per_seed == check_feature_recovery(
        sae, data, seeds=3).per_seed
    # the same features under two seeds are one sample: one row, the seeds pool the bootstrap
    two = check_feature_recovery(sae, data, seeds=(0, 1))
    assert [r.seed for r in two.per_seed] == [0] and "seeds_sharing_data" in two.details
    with pytest.raises(MiAssertInputError, match="not both"):
        check_feature_recovery(sae, data, seed=1, seeds=(1, 2))


@pytest.mark.parametrize("min_mmcs", [1.0, -1.5, float("inf")])
def test_mmcs_threshold_in_range(synth, min_mmcs):
    from mi_assert import MiAssertInputError

    data, _ = synth
    with pytest.raises(MiAssertInputError, match="min_mmcs|MMCS"):
        assert_feature_recovery(true_sae(data), data, min_mmcs=min_mmcs)


def test_fires_evidence_and_options(planted_model, basis):
    from mi_assert import MiAssertInputError
    from mi_assert.sae import check_feature_fires
    from tests.evidence_contract import check_evidence as assert_consistent

    pos, neg = _prompts(5, 5, 24, seed=1), _prompts(None, 5, 24, seed=2)
    good = check_feature_fires(basis, planted_model, pos, neg, feature=TOK + 5, min_auroc=0.85)
    bad = check_feature_fires(basis, planted_model, pos, neg, feature=TOK + 7, min_auroc=0.85)
    assert good.passed and not bad.passed
    assert good.n == 48 and good.unit == "prompts"
    assert_consistent(good)
    assert_consistent(bad)
    for min_auroc in (1.0, -0.1):
        with pytest.raises(MiAssertInputError, match="AUROC"):
            check_feature_fires(basis, planted_model, pos, neg, feature=TOK + 5, min_auroc=min_auroc)
    copies = pos[:1].repeat(4, 1), neg[:1].repeat(4, 1)  # 4 + 4 copies: 2 distinct prompts
    with pytest.raises(MiAssertInputError, match="distinct"):
        check_feature_fires(basis, planted_model, *copies, feature=TOK + 5)


def test_steering_evidence_and_duplicates(planted_model, repeated, final_basis):
    from mi_assert import MiAssertInputError
    from mi_assert.sae import check_feature_steering
    from tests.evidence_contract import check_evidence as assert_consistent

    good = check_feature_steering(final_basis, planted_model, repeated, feature=OUT + 7,
                                  metric=_logit_of(7), scale=1.0, min_effect=5.0, seeds=(0, 1))
    bad = check_feature_steering(final_basis, planted_model, repeated, feature=JUNK + 1,
                                 metric=_logit_of(7), scale=1.0, min_effect=1.0)
    # fixed prompts: seed 1 resamples seed 0's data, so it is merged into one row
    assert good.passed and not bad.passed and [r.seed for r in good.per_seed] == [0]
    assert good.n == 32 and "seed 1 resamples the same data as seed 0" in good.details["seeds_sharing_data"]
    assert_consistent(good)
    assert_consistent(bad)
    with pytest.raises(MiAssertInputError, match="distinct"):
        check_feature_steering(final_basis, planted_model, repeated[:1].repeat(12, 1),
                               feature=OUT + 7, metric=_logit_of(7), scale=1.0)
