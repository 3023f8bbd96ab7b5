"""Fixtures for the readout/weight-claim tests (DLA, logit lens, probes, composition)."""

from __future__ import annotations

import pytest
import torch


def distinct_repeats(n_prompts: int, repeat_len: int, d_vocab: int, seed: int) -> torch.Tensor:
    """BOS(0) + r + r with ``r`` drawn *without* replacement, so every induction target is unique
    (with repeats inside ``r`` an induction head splits its attention between targets)."""
    gen = torch.Generator().manual_seed(seed)
    r = torch.stack([torch.randperm(d_vocab - 1, generator=gen)[:repeat_len] + 1
                     for _ in range(n_prompts)])
    return torch.cat([torch.zeros(n_prompts, 1, dtype=torch.long), r, r], dim=1)


@pytest.fixture(scope="session")
def induction_batch(planted):
    """(tokens, correct, wrong) for predicting the last token from position -2 on planted s0."""
    handle, _ = planted
    tokens = distinct_repeats(24, 16, handle.d_vocab, seed=3)
    correct = tokens[:, -1]
    gen = torch.Generator().manual_seed(4)
    # any other non-BOS token
    wrong = (correct - 1 + torch.randint(1, handle.d_vocab - 1, (24,), generator=gen)) % (handle.d_vocab - 1) + 1
    assert bool((wrong != correct).all())
    return tokens, correct, wrong


@pytest.fixture(scope="session")
def ln_model():
    """A small random TransformerLens model WITH LayerNorm and MLPs, all LN weights and biases
    randomised so that the final norm's scale, weight and bias all matter."""
    from transformer_lens import HookedTransformer, HookedTransformerConfig

    cfg = HookedTransformerConfig(n_layers=2, d_model=32, n_heads=4, d_head=8, d_mlp=64,
                                  d_vocab=50, n_ctx=16, act_fn="gelu", normalization_type="LN",
                                  seed=0)
    model = HookedTransformer(cfg)
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(".w"):
                p.copy_(1 + 0.3 * torch.randn(p.shape, generator=gen))
            elif name.endswith(".b") or ".b_" in name or name.startswith("b_"):
                p.copy_(0.2 * torch.randn(p.shape, generator=gen))
    return model.eval()


@pytest.fixture(scope="session")
def ln_batch():
    gen = torch.Generator().manual_seed(2)
    tokens = torch.randint(0, 50, (6, 12), generator=gen)
    correct = torch.randint(0, 50, (6,), generator=gen)
    return tokens, correct, (correct + 7) % 50


