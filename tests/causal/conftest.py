"""Fixtures for the causal-claims tests: the planted model and its induction pairs."""

from __future__ import annotations

import pytest

from tests.evidence_contract import check_evidence as _check_evidence


@pytest.fixture(scope="session")
def planted_pairs(planted):
    """(handle, circuit, PromptSet of 16 swap-corrupted induction pairs)."""
    from mi_assert.prompts.pairs import induction_pairs

    handle, circuit = planted
    return handle, circuit, induction_pairs(handle, seed=0, n_prompts=16)


@pytest.fixture(scope="session")
def mlp_model():
    """A small random TransformerLens model with LayerNorm and MLPs (for TL-equality tests)."""
    import torch
    from transformer_lens import HookedTransformer, HookedTransformerConfig

    cfg = HookedTransformerConfig(n_layers=3, d_model=64, d_head=16, n_heads=4, d_mlp=128,
                                  d_vocab=100, n_ctx=32, act_fn="gelu_new",
                                  normalization_type="LN", seed=0)
    model = HookedTransformer(cfg)
    with torch.no_grad():  # non-trivial biases so every site matters
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    model.eval()
    return model


@pytest.fixture
def evidence_ok():
    """``evidence_ok(ev)``: assert the Evidence invariants (headline = deciding row/member)."""
    return _check_evidence
