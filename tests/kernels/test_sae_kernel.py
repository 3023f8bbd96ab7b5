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
        acts, recon = sae_forward(x, sae.W_enc, sae.b_enc, sae.W_dec, sae.b_dec)
    assert (acts_ref > 0).float().mean() > 0.1  # the ReLU is doing something
    assert (acts - acts_ref).abs().max() <= 1e-4
    assert (recon - recon_ref).abs().max() <= 1e-4


def test_standard_sae_takes_the_fused_path_and_matches_saelens():
    sae_lens = pytest.importorskip("sae_lens")
    from mi_assert.kernels.sae import fusable_standard_sae
    from mi_assert.sae.metrics import sae_forward as metrics_sae_forward

    torch.manual_seed(1)
    sae = sae_lens.StandardSAE(sae_lens.StandardSAEConfig(d_in=24, d_sae=96))
    with torch.no_grad():
        for p in sae.parameters():
            p.copy_(torch.randn_like(p) * 0.3)
    assert fusable_standard_sae(sae)
    x = torch.randn(3, 7, 24)
    feats, recon = metrics_sae_forward(sae, x)
    with torch.no_grad():
        ref_feats = sae.encode(x)
        ref_recon = sae.decode(ref_feats)
    assert (ref_feats > 0).float().mean() > 0.1
    assert (feats - ref_feats).abs().max() <= 1e-5 and (recon - ref_recon).abs().max() <= 1e-5


def test_other_saes_keep_their_own_encode():
    sae_lens = pytest.importorskip("sae_lens")
    from mi_assert.kernels.sae import fusable_standard_sae

    topk = sae_lens.TopKSAE(sae_lens.TopKSAEConfig(d_in=24, d_sae=96, k=4))
    assert not fusable_standard_sae(topk)
    normed = sae_lens.StandardSAE(sae_lens.StandardSAEConfig(
        d_in=24, d_sae=96, normalize_activations="constant_norm_rescale"))
    assert not fusable_standard_sae(normed)
    hooked = sae_lens.StandardSAE(sae_lens.StandardSAEConfig(d_in=24, d_sae=96))
    handle = hooked.hook_sae_acts_post.register_forward_hook(lambda m, i, o: o * 0)
    assert not fusable_standard_sae(hooked)  # a user's hook must run, so the SAE's own encode does
    handle.remove()
    assert fusable_standard_sae(hooked)
    assert not fusable_standard_sae(torch.nn.Linear(3, 3))
