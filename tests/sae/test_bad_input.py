"""Bad input raises MiAssertInputError naming what is wrong and what is allowed."""

from __future__ import annotations

import pytest
import torch

from mi_assert import MiAssertInputError, assert_sae_reconstruction
from mi_assert.sae.synthetic import random_sae, true_sae
from tests.sae.conftest import HOOK


def test_width_mismatch(planted_model, repeated):
    sae = random_sae(100, 64, seed=0)
    with pytest.raises(MiAssertInputError, match="width 264 .* d_in is 100"):
        assert_sae_reconstruction(sae, planted_model, repeated, hook=HOOK)


def test_hook_not_in_model(planted_model, repeated, basis):
    with pytest.raises(MiAssertInputError, match="blocks.7.hook_resid_post"):
        assert_sae_reconstruction(basis, planted_model, repeated, hook="blocks.7.hook_resid_post")


def test_nan_activations(synth):
    data, x = synth
    bad = x.clone()
    bad[3, 5] = float("nan")
    with pytest.raises(MiAssertInputError, match="NaN"):
        assert_sae_reconstruction(true_sae(data), activations=bad)


def test_nan_in_model_activations(planted_model, repeated, basis):
    import copy

    broken = copy.deepcopy(planted_model.model)
    with torch.no_grad():
        broken.blocks[0].attn.W_O[0, 0, 0] = float("nan")
    with pytest.raises(MiAssertInputError, match="non-finite"):
        assert_sae_reconstruction(basis, broken, repeated)


def test_empty_token_batch(planted_model, basis):
    with pytest.raises(MiAssertInputError, match="empty"):
        assert_sae_reconstruction(basis, planted_model, torch.zeros(0, 5, dtype=torch.long))


def test_empty_activations(synth):
    data, _ = synth
    with pytest.raises(MiAssertInputError, match="non-empty"):
        assert_sae_reconstruction(true_sae(data), activations=torch.zeros(0, data.config.d))


def test_model_and_activations_are_exclusive(planted_model, repeated, basis, synth):
    with pytest.raises(MiAssertInputError, match="either a model"):
        assert_sae_reconstruction(basis, planted_model, repeated, activations=synth[1])
    with pytest.raises(MiAssertInputError, match="model= and tokens="):
        assert_sae_reconstruction(true_sae(synth[0]), activations=synth[1], min_ce_loss_recovered=0.5)


def test_bad_criteria(synth):
    data, x = synth
    with pytest.raises(MiAssertInputError, match="l0_range"):
        assert_sae_reconstruction(true_sae(data), activations=x, l0_range=(5, 1))
    with pytest.raises(MiAssertInputError, match="alpha"):
        assert_sae_reconstruction(true_sae(data), activations=x, alpha=0.7)


def test_not_an_sae(synth):
    with pytest.raises(MiAssertInputError, match="SAELens SAE"):
        assert_sae_reconstruction(torch.nn.Linear(3, 3), activations=synth[1])


def test_transcoder_reconstruction_is_refused(planted_model, repeated):
    from sae_lens.saes import Transcoder, TranscoderConfig

    tc = Transcoder(TranscoderConfig(d_in=264, d_sae=32, d_out=264, apply_b_dec_to_input=False))
    tc.cfg.metadata.hook_name = HOOK
    with pytest.raises(MiAssertInputError, match="transcoders"):
        assert_sae_reconstruction(tc, planted_model, repeated)


def test_feature_index_out_of_range(planted_model, repeated, basis):
    from mi_assert import assert_feature_fires

    with pytest.raises(MiAssertInputError, match="264 latents"):
        assert_feature_fires(basis, planted_model, repeated, repeated, feature=999)


def test_steering_metric_shape(planted_model, repeated, basis):
    from mi_assert import assert_feature_steering

    with pytest.raises(MiAssertInputError, match="one value per prompt"):
        assert_feature_steering(basis, planted_model, repeated, feature=1, metric=lambda lg: lg.sum())
