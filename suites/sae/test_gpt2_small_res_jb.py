"""gpt2-small-res-jb, blocks.8.hook_resid_pre: L0 about 60-69, CE loss recovered about 0.92-0.97
(SAELens tutorial outputs, approximate; /work/shared/reference/known-results.md). Skips with
the reason when the SAE or GPT-2 weights are not available offline."""

from __future__ import annotations

import pytest

from mi_assert import ModelUnavailableError, assert_sae_reconstruction, load_model
from mi_assert.sae import load_sae


@pytest.fixture(scope="module")
def gpt2_and_sae():
    try:
        sae = load_sae("gpt2-small-res-jb", sae_id="blocks.8.hook_resid_pre")
        model = load_model("gpt2", backend="transformer_lens")
    except ModelUnavailableError as exc:
        pytest.skip(str(exc))
    return model, sae


def test_layer8_reconstruction_matches_published(gpt2_and_sae):
    model, sae = gpt2_and_sae
    text = ("The quick brown fox jumps over the lazy dog. " * 3).strip()
    prompts = [text] * 1
    tokens = model.to_tokens(prompts)
    assert_sae_reconstruction(sae, model, tokens.repeat(16, 1), l0_range=(40, 90),
                              min_ce_loss_recovered=0.85)
