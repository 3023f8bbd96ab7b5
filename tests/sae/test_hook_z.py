"""SAEs on ``attn.hook_z``: all heads flattened head-major (d_in = n_heads * d_head), as SAELens."""

from __future__ import annotations

import pytest
import torch

from mi_assert.errors import MiAssertInputError
from mi_assert.sae import check_sae_reconstruction, measure_sae_reconstruction, sae_forward

HOOK = "blocks.1.attn.hook_z"


@pytest.fixture(scope="module")
def attn_model(one_torch_thread):
    from mi_assert import load_model

    return load_model("attn-only-2l-induction@s0", device="cpu")


@pytest.fixture(scope="module")
def tokens(attn_model):
    from mi_assert.prompts import repeated_tokens

    return repeated_tokens(16, 8, attn_model.d_vocab, seed=1, bos_token_id=attn_model.bos_token_id)


@pytest.fixture(scope="module")
def z(attn_model, tokens):
    """The zoo model's hook_z activations ``[batch, pos, n_heads, d_head]``."""
    _, cache = attn_model.run_with_cache(tokens, [HOOK])
    return cache[HOOK].detach()


def z_sae(handle, architecture: str = "standard", reshape: str = "none"):
    """A random SAELens SAE reading every head of ``HOOK`` (d_in = n_heads * d_head)."""
    from sae_lens import StandardSAE, StandardSAEConfig, TopKSAE, TopKSAEConfig

    torch.manual_seed(0)
    d_in = handle.n_heads * handle.d_head
    if architecture == "topk":
        sae = TopKSAE(TopKSAEConfig(d_in=d_in, d_sae=96, k=8, reshape_activations=reshape))
    else:
        sae = StandardSAE(StandardSAEConfig(d_in=d_in, d_sae=96, reshape_activations=reshape))
    sae.cfg.metadata.hook_name = HOOK
    return sae


def test_one_position_of_hook_z_is_rows_of_flattened_heads(attn_model, z):
    sae = z_sae(attn_model)
    last = z[:, -1]  # [batch, n_heads, d_head]: each row its own prompt
    per_head = measure_sae_reconstruction(sae, activations=last).per_seed[0]
    flat = measure_sae_reconstruction(sae, activations=last.flatten(1)).per_seed[0]
    assert per_head.n_prompts == flat.n_prompts == z.shape[0]
    assert per_head.metrics == pytest.approx(flat.metrics)


def test_model_splice_measures_what_the_flattened_activations_give(attn_model, tokens, z):
    sae = z_sae(attn_model)
    spliced = measure_sae_reconstruction(sae, attn_model, tokens, with_ce=False).per_seed[0]
    given = measure_sae_reconstruction(sae, activations=z.flatten(-2)[:, 1:]).per_seed[0]  # BOS out
    assert spliced.metrics["explained_variance"] == pytest.approx(given.metrics["explained_variance"], abs=1e-6)
    ev = check_sae_reconstruction(sae, attn_model, tokens, max_ce_loss_increase=100.0)
    assert ev.settings["sae_hook"] == HOOK and ev.n == tokens.shape[0]


@pytest.mark.parametrize("architecture", ["standard", "topk"])  # fused kernel / encode-decode path
def test_reconstruction_matches_saelens_hook_z_reshaping(attn_model, z, architecture):
    sae = z_sae(attn_model, architecture, reshape="hook_z")
    assert sae.hook_z_reshaping_mode
    ours_feats, ours_recon = sae_forward(sae, z)
    with torch.no_grad():
        theirs_feats = sae.encode(z)  # SAELens flattens [..., n_heads, d_head] itself
        theirs_recon = sae.decode(theirs_feats)
    assert ours_recon.shape == z.shape == theirs_recon.shape
    torch.testing.assert_close(ours_feats, theirs_feats, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(ours_recon, theirs_recon, rtol=1e-5, atol=1e-5)
    assert sae.hook_z_reshaping_mode  # left as it was


def test_single_head_width_is_refused_naming_the_flattened_width(attn_model, tokens):
    from sae_lens import StandardSAE, StandardSAEConfig

    one_head = StandardSAE(StandardSAEConfig(d_in=attn_model.d_head, d_sae=8))
    one_head.cfg.metadata.hook_name = HOOK
    with pytest.raises(MiAssertInputError, match=r"d_in=16 reads one head's width.*d_in = n_heads \* d_head = 64"):
        check_sae_reconstruction(one_head, attn_model, tokens, max_ce_loss_increase=1.0)


def test_wrong_width_names_the_expected_d_in(attn_model, tokens):
    from sae_lens import StandardSAE, StandardSAEConfig

    wrong = StandardSAE(StandardSAEConfig(d_in=24, d_sae=8))
    wrong.cfg.metadata.hook_name = HOOK
    with pytest.raises(MiAssertInputError, match=r"d_in is 24; an SAE for these activations needs d_in = n_heads \* d_head = 64"):
        check_sae_reconstruction(wrong, attn_model, tokens, max_ce_loss_increase=1.0)
