"""Fixtures for edge-level tests: tiny random TransformerLens models and the planted model."""

from __future__ import annotations

import pytest
import torch

import mi_assert


def random_model(attn_only: bool, normalization: str | None = "LN", parallel: bool = False,
                 positions: str = "standard"):
    from transformer_lens import HookedTransformer, HookedTransformerConfig

    cfg = HookedTransformerConfig(n_layers=2, d_model=32, d_head=8, n_heads=4, d_mlp=64,
                                  d_vocab=50, n_ctx=16, act_fn="gelu_new", attn_only=attn_only,
                                  normalization_type=normalization, parallel_attn_mlp=parallel,
                                  positional_embedding_type=positions, seed=0)
    model = HookedTransformer(cfg)
    with torch.no_grad():  # non-trivial biases and LN weights so every input matters
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return model.eval()


@pytest.fixture(scope="session")
def mlp_model():
    """2 layers × 4 heads, LayerNorm, MLPs (110 edges)."""
    return random_model(attn_only=False)


@pytest.fixture(scope="session")
def attn_only_model():
    """2 layers × 4 heads, LayerNorm, attention only (81 edges)."""
    return random_model(attn_only=True)


def random_pairs_data():
    """(clean, corrupted, metric) for the random models: 4 prompts of 8 tokens, two positions
    changed, logit difference of random answers at the last position."""
    gen = torch.Generator().manual_seed(0)
    clean = torch.randint(0, 50, (4, 8), generator=gen)
    corrupted = clean.clone()
    corrupted[:, 2] = torch.randint(0, 50, (4,), generator=gen)
    corrupted[:, 5] = torch.randint(0, 50, (4,), generator=gen)
    metric = mi_assert.logit_diff(torch.randint(0, 50, (4,), generator=gen),
                                  torch.randint(0, 50, (4,), generator=gen))
    return clean, corrupted, metric


@pytest.fixture(scope="session")
def random_pairs():
    return random_pairs_data()


@pytest.fixture(scope="session")
def planted_edges(planted):
    """(handle, ground truth, 16 swap-corrupted induction pairs) of planted-induction@s0."""
    from mi_assert.prompts.pairs import induction_pairs

    handle, circuit = planted
    return handle, circuit, induction_pairs(handle, seed=0, n_prompts=16)
