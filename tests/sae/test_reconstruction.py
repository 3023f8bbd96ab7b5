"""assert_sae_reconstruction: true SAEs pass, random and decoder-shuffled SAEs raise."""

from __future__ import annotations

import pytest
import torch

from mi_assert import ClaimFailed, assert_sae_reconstruction
from mi_assert.sae.synthetic import random_sae, shuffled_decoder_sae, true_sae
from tests.sae.conftest import HOOK, SECOND_HALF


def test_true_dictionary_sae_reconstructs_synthetic_data(synth):
    data, x = synth
    ev = assert_sae_reconstruction(true_sae(data), activations=x, min_explained_variance=0.7,
                                   l0_range=(0.5, 5.0), max_dead_fraction=0.2)
    assert ev.passed and len(ev.family) == 4
    assert ev.settings["correction"] == "Holm over 4 members"
    assert ev.settings["sae_architecture"] == "jumprelu" and ev.settings["sae_d_sae"] == data.config.n_features
    # SAELens's pooled formula and the legacy / per-dimension variants are all reported
    assert {"explained_variance (pooled, SAELens>=6)", "explained_variance_legacy (per-token mean)",
            "explained_variance_per_dim (sklearn)"} <= set(ev.details)


def test_default_criterion_is_explained_variance(synth):
    data, x = synth
    ev = assert_sae_reconstruction(true_sae(data), activations=x)
    assert [m.claim for m in ev.family] == ["explained variance > 0.7"]


@pytest.mark.parametrize("make", [lambda d: random_sae(d.config.d, d.config.n_features, seed=3),
                                  lambda d: shuffled_decoder_sae(true_sae(d), seed=3)],
                         ids=["random", "shuffled-decoder"])
def test_broken_saes_fail_reconstruction(synth, make):
    data, x = synth
    with pytest.raises(ClaimFailed) as err:
        assert_sae_reconstruction(make(data), activations=x, min_explained_variance=0.7)
    assert err.value.evidence.estimate < 0.0  # far below, not a near miss
    assert "explained variance" in str(err.value)


def test_l0_range_fails_when_sae_is_too_sparse_for_the_range(synth):
    data, x = synth
    with pytest.raises(ClaimFailed) as err:
        assert_sae_reconstruction(true_sae(data), activations=x, l0_range=(3.0, 10.0))
    failing = [m.claim for m in err.value.evidence.family if not m.passed]
    assert failing == ["L0 > 3.0"]


def test_seeds_each_must_pass(synth):
    data, _ = synth
    ev = assert_sae_reconstruction(true_sae(data), activations=lambda s: data.sample(256, 100 + s)[0],
                                   seeds=[0, 1, 2])
    assert [s.seed for s in ev.family[0].per_seed] == [0, 1, 2]


def test_basis_sae_on_planted_model_passes_with_ce_splice(planted_model, repeated, basis):
    ev = assert_sae_reconstruction(basis, planted_model, repeated, min_explained_variance=0.9,
                                   min_ce_loss_recovered=0.9, max_ce_loss_increase=0.1,
                                   l0_range=(1, 10), ce_positions=SECOND_HALF)
    assert ev.passed
    assert ev.model["spec"] == "planted-induction@s0"
    assert ev.settings["sae_hook"] == HOOK
    assert ev.details["ce_zero_ablated"] > ev.details["ce_with_sae"] >= ev.details["ce_clean"] - 0.05


def test_random_sae_on_planted_model_fails_ce_recovered(planted_model, repeated):
    sae = random_sae(planted_model.d_model, 512, seed=0)
    sae.cfg.metadata.hook_name = HOOK
    with pytest.raises(ClaimFailed) as err:
        assert_sae_reconstruction(sae, planted_model, repeated, min_ce_loss_recovered=0.5,
                                  ce_positions=SECOND_HALF)
    assert err.value.evidence.family[0].estimate < 0.5


def test_ce_recovered_undefined_when_zero_ablation_does_not_hurt(planted_model, repeated, basis):
    # on every position the planted model is overconfident on the unpredictable first half, so
    # its clean loss is above the uniform (zero-ablated) loss: the ratio has no meaning there
    from mi_assert import MiAssertInputError

    with pytest.raises(MiAssertInputError, match="no meaningful denominator"):
        assert_sae_reconstruction(basis, planted_model, repeated, min_ce_loss_recovered=0.9)


@pytest.mark.parametrize("arch", ["topk", "gated", "jumprelu", "standard"])
def test_every_architecture_runs(planted_model, repeated, arch):
    """SAELens SAEs of every architecture go through the splice (random weights: no claim)."""
    import sae_lens.saes as S

    classes = {"topk": (S.TopKSAE, S.TopKSAEConfig, {"k": 4}), "gated": (S.GatedSAE, S.GatedSAEConfig, {}),
               "jumprelu": (S.JumpReLUSAE, S.JumpReLUSAEConfig, {}),
               "standard": (S.StandardSAE, S.StandardSAEConfig, {})}
    cls, cfg_cls, kw = classes[arch]
    torch.manual_seed(0)
    sae = cls(cfg_cls(d_in=planted_model.d_model, d_sae=64, **kw))
    sae.cfg.metadata.hook_name = HOOK
    with pytest.raises(ClaimFailed) as err:
        assert_sae_reconstruction(sae, planted_model, repeated[:8], max_ce_loss_increase=0.0,
                                  l0_range=(0, 64), ce_positions=SECOND_HALF)
    assert err.value.evidence.settings["sae_architecture"] == arch


def test_fixed_tokens_are_measured_once_for_every_seed(planted_model, repeated, basis, monkeypatch):
    """Seeds differ only in the bootstrap when the tokens are fixed: one forward serves them."""
    from mi_assert.sae import metrics as M

    calls = []
    original = M.measure_on_model
    monkeypatch.setattr(M, "measure_on_model", lambda *a, **k: calls.append(1) or original(*a, **k))
    ev = assert_sae_reconstruction(basis, planted_model, repeated, min_ce_loss_recovered=0.5,
                                   ce_positions=SECOND_HALF, seeds=(0, 1, 2))
    assert len(calls) == 1 and len(ev.family[0].per_seed) == 3
    calls.clear()
    assert_sae_reconstruction(basis, planted_model, lambda seed: repeated[seed:seed + 16],
                              min_ce_loss_recovered=0.5, ce_positions=SECOND_HALF, seeds=(0, 1))
    assert len(calls) == 2  # a callable draws new tokens per seed
