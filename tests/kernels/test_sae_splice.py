"""The CE splice (kernels.sae_splice) equals the hook-based stacked forward, on the CPU."""

from __future__ import annotations

import os

import pytest
import torch

os.environ.setdefault("TQDM_DISABLE", "1")

from benchmarks.support.testing import random_tl_model  # noqa: E402
from mi_assert.backends.transformer_lens import TransformerLensHandle  # noqa: E402
from mi_assert.kernels import fast_spliced_ce  # noqa: E402
from mi_assert.kernels.functional import full_logits, functional_model  # noqa: E402
from mi_assert.kernels.sae_splice import (  # noqa: E402
    SPLICE_KINDS,
    next_token_ce,
    splice_unsupported_reason,
    spliced_next_token_ce,
)
from mi_assert.sae.metrics import per_token_ce  # noqa: E402

ATOL = 1e-4


@pytest.fixture(scope="module")
def gpt2_like() -> TransformerLensHandle:
    """Tiny GPT-2-shaped model: LN, tanh-GELU MLPs, biases and LN weights all random."""
    return TransformerLensHandle(random_tl_model(n_layers=3, d_model=32, n_heads=4, d_mlp=64,
                                                 d_vocab=61, n_ctx=24, seed=2))


def tokens_for(handle, batch: int = 5, n_pos: int = 12) -> torch.Tensor:
    gen = torch.Generator().manual_seed(4)
    return torch.randint(0, handle.d_vocab, (batch, n_pos), generator=gen)


def three_variants(act: torch.Tensor) -> torch.Tensor:
    """clean | a deterministic perturbation (stands in for an SAE) | zeros."""
    gen = torch.Generator().manual_seed(9)
    noise = torch.randn(act.shape, generator=gen).to(act)
    return torch.cat([act, 0.7 * act + 0.5 * noise, torch.zeros_like(act)])


def hook_path(handle, tokens: torch.Tensor, hook: str) -> torch.Tensor:
    """Reference: the batch stacked three times through the backend's hooks, full logits."""
    b = tokens.shape[0]
    logits, _ = handle.run_with_edits(tokens.repeat(3, 1), {hook: lambda act: three_variants(act[:b])})
    return per_token_ce(logits, tokens.repeat(3, 1)).view(3, b, -1)


@pytest.mark.parametrize("kind", sorted(SPLICE_KINDS))
@pytest.mark.parametrize("fused", [True, False])
def test_splice_equals_hook_path(gpt2_like, kind, fused):
    tokens = tokens_for(gpt2_like)
    fm = functional_model(gpt2_like.model)
    for layer in (0, 2):
        hook = f"blocks.{layer}.{kind}"
        ours = spliced_next_token_ce(fm, tokens, layer, kind, three_variants, fused=fused)
        ref = hook_path(gpt2_like, tokens, hook)
        assert ours.shape == ref.shape == (3, tokens.shape[0], tokens.shape[1] - 1)
        assert (ours.double() - ref).abs().max() <= ATOL, hook
        # the three variants differ, so the comparison is not between identical rows
        assert (ref[1] - ref[0]).abs().max() > 100 * ATOL and (ref[2] - ref[0]).abs().max() > 100 * ATOL


@pytest.mark.parametrize("hook", ["blocks.0.hook_resid_pre", "blocks.0.hook_resid_post",
                                  "blocks.1.hook_attn_out", "blocks.1.hook_resid_pre"])
def test_attention_only_model(planted_handle, hook):
    tokens = tokens_for(planted_handle, n_pos=14)
    ours = fast_spliced_ce(planted_handle, tokens, hook, three_variants)
    assert ours is not None
    assert (ours.double() - hook_path(planted_handle, tokens, hook)).abs().max() <= ATOL


def test_chunked_cross_entropy_equals_one_chunk(gpt2_like):
    fm = functional_model(gpt2_like.model)
    tokens = tokens_for(gpt2_like)
    x = torch.randn(tokens.shape + (fm.d_model,), generator=torch.Generator().manual_seed(1))
    whole = next_token_ce(fm, x, tokens)
    tiny_budget = next_token_ce(fm, x, tokens, budget_bytes=1)  # one row per chunk
    assert (whole - tiny_budget).abs().max() <= 1e-5  # GEMM blocking may round differently
    ref = per_token_ce(fm.logits(x), tokens)
    assert (whole.double() - ref).abs().max() <= 1e-5


def test_fused_forward_equals_transformer_lens(gpt2_like):
    import dataclasses

    tokens = tokens_for(gpt2_like)
    fm = dataclasses.replace(functional_model(gpt2_like.model), fused=True)
    with torch.no_grad():
        assert (full_logits(fm, tokens) - gpt2_like.model(tokens)).abs().max() <= ATOL


def test_unsupported_cases_fall_back(planted_handle):
    fm = functional_model(planted_handle.model)  # attention-only
    assert "attention-only" in splice_unsupported_reason(fm, "hook_mlp_out")
    assert "hook kind" in splice_unsupported_reason(fm, "attn.hook_z")
    tokens = tokens_for(planted_handle)
    assert fast_spliced_ce(planted_handle, tokens, "blocks.0.attn.hook_z", three_variants) is None
    assert fast_spliced_ce(planted_handle, tokens, "hook_embed", three_variants) is None
    with pytest.raises(ValueError, match="does not support"):
        spliced_next_token_ce(fm, tokens, 0, "hook_mlp_out", three_variants)


def test_bad_edit_shape_is_named(gpt2_like):
    fm = functional_model(gpt2_like.model)
    with pytest.raises(ValueError, match="edit returned shape"):
        spliced_next_token_ce(fm, tokens_for(gpt2_like), 1, "hook_resid_pre", lambda a: a[:, :-1])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_splice_on_cuda_equals_cpu_hook_path():
    model = random_tl_model(n_layers=3, d_model=64, n_heads=4, d_mlp=256, d_vocab=1001, n_ctx=32, seed=5)
    cpu = TransformerLensHandle(model)
    tokens = tokens_for(cpu, batch=6, n_pos=20)
    refs = {kind: hook_path(cpu, tokens, f"blocks.1.{kind}") for kind in sorted(SPLICE_KINDS)}
    gpu = TransformerLensHandle(random_tl_model(n_layers=3, d_model=64, n_heads=4, d_mlp=256,
                                                d_vocab=1001, n_ctx=32, seed=5, device="cuda"))
    for kind, ref in refs.items():
        ours = fast_spliced_ce(gpu, tokens.cuda(), f"blocks.1.{kind}", three_variants)
        assert ours is not None
        assert (ours.double().cpu() - ref).abs().max() <= ATOL, kind
