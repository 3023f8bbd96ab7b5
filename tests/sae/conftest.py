"""Fixtures for the SAE tests: synthetic data with known features, the planted model."""

from __future__ import annotations

import pytest
import torch

HOOK = "blocks.0.hook_resid_post"


@pytest.fixture(scope="session")
def synth():
    """(data, held-out activations) in the calibration shape (128 dims, 256 features)."""
    from mi_assert.sae.synthetic import CALIBRATION_CONFIG, make_superposition

    data = make_superposition(CALIBRATION_CONFIG, seed=0)
    x, _ = data.sample(512, seed=1)
    return data, x


@pytest.fixture(scope="session")
def planted_model():
    from mi_assert import load_model

    torch.set_num_threads(1)
    return load_model("planted-induction@s0", device="cpu")


@pytest.fixture(scope="session")
def repeated():
    """BOS + 20 random tokens repeated twice (32 prompts); the second half is predictable."""
    from mi_assert.prompts import repeated_tokens

    return repeated_tokens(32, 20, 64, seed=1, bos_token_id=0)


#: predicting positions 21..39 predict the repeated half (tokens 22..40)
SECOND_HALF = list(range(21, 40))


@pytest.fixture(scope="session")
def basis(planted_model):
    from mi_assert.sae.synthetic import basis_sae

    return basis_sae(planted_model.d_model, HOOK, "planted-induction@s0")


def exact_sae(d: int, hook: str | None = None):
    """A StandardSAE with latents ±e_i: relu(x) - relu(-x) = x, so the reconstruction is exact."""
    from sae_lens import StandardSAE, StandardSAEConfig

    sae = StandardSAE(StandardSAEConfig(d_in=d, d_sae=2 * d, apply_b_dec_to_input=False))
    eye = torch.eye(d)
    with torch.no_grad():
        sae.W_enc.copy_(torch.cat([eye, -eye], dim=1))
        sae.W_dec.copy_(torch.cat([eye, -eye], dim=0))
        sae.b_enc.zero_()
        sae.b_dec.zero_()
    if hook is not None:
        sae.cfg.metadata.hook_name = hook
    return sae
