"""The fused SAE path computes SAELens's StandardSAE."""

from __future__ import annotations

import pytest
import torch

from mi_assert.kernels.sae import sae_forward


def test_fused_sae_equals_saelens_standard_sae():
    sae_lens = pytest.importorskip("sae_lens")
    StandardSAE, StandardSAEConfig = sae_lens.StandardSAE, sae_lens.StandardSAEConfig

    torch.manual_seed(0)
    sae = StandardSAE(StandardSAEConfig(d_in=32, d_sae=256, apply_b_dec_to_input=True))
    with torch.no_grad():
        for p in sae.parameters():
            p.copy_(torch.randn_like(p) * 0.3)
        x = torch.randn(50, 32)
        acts_ref = sae.encode(x)
        recon_ref = sae.decode(acts_ref)
        recon, acts = sae_forward(x, sae.W_enc, sae.b_enc, sae.W_dec, sae.b_dec)
    assert (acts_ref > 0).float().mean() > 0.1  # the ReLU is doing something
    assert (acts - acts_ref).abs().max() <= 1e-4
    assert (recon - recon_ref).abs().max() <= 1e-4
