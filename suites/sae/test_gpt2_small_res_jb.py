"""gpt2-small-res-jb, blocks.8.hook_resid_pre: L0 about 60-69, CE loss recovered about 0.92-0.97
(SAELens tutorial outputs, approximate; /work/shared/reference/known-results.md). Skips with
the reason when the SAE or GPT-2 weights are not available offline."""

from __future__ import annotations

import pytest
import torch

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


SENTENCES = [
    "The committee met on Tuesday to discuss the new budget for the city's public schools.",
    "After the storm passed, volunteers cleared fallen trees from the roads near the river.",
    "Researchers found that the protein folds differently when the temperature rises.",
    "She opened the old wooden box and found a stack of letters written by her grandfather.",
    "The company reported higher profits this quarter, driven by strong sales in Asia.",
    "In the final minutes of the match, the goalkeeper made two remarkable saves.",
    "He learned to play the violin as a child and later joined the national orchestra.",
    "The museum will host an exhibition of modern sculpture from artists across Europe.",
    "Farmers in the valley rely on the spring rains to water their fields of wheat.",
    "The software update fixes several security problems and improves battery life.",
    "Historians disagree about the causes of the war and the role of its leaders.",
    "Our train was delayed for an hour because of a signal failure outside the station.",
]
N_TOKENS = 40  # every passage is cut to the same length so prompts stack into one batch


def _passages(tokenizer, n: int = 32, seed: int = 0) -> torch.Tensor:
    """``n`` passages of three different sentences (seeded order), BOS + N_TOKENS each.

    With GPT-2's tokenizer a sentence is about 17 tokens, so the first two sentences (an ordered
    pair of the 12: 132 possibilities) decide most of each passage and passages differ.
    """
    gen = torch.Generator().manual_seed(seed)
    rows = []
    for _ in range(n):
        picks = torch.randperm(len(SENTENCES), generator=gen)[:3].tolist()
        ids = tokenizer(" ".join(SENTENCES[k] for k in picks))["input_ids"][:N_TOKENS]
        if len(ids) < N_TOKENS:
            raise ValueError(f"passage shorter than {N_TOKENS} tokens: {len(ids)}")
        rows.append([tokenizer.bos_token_id, *ids])
    return torch.tensor(rows)


def test_layer8_reconstruction_matches_published(gpt2_and_sae):
    # Published figures are on OpenWebText; these hand-written passages differ, so the bounds are
    # wider than the published ranges (L0 60-69, CE recovered 0.92-0.97), set before any run.
    model, sae = gpt2_and_sae
    tokens = _passages(model.tokenizer)
    assert_sae_reconstruction(sae, model, tokens, l0_range=(40, 90), min_ce_loss_recovered=0.85)
