"""The fast kernels on Llama / Mistral / Qwen2 / Gemma / Pythia / GPT-J-shaped models, on the CPU.

Tiny random-weight HookedTransformers, one per architecture family (rotary positions, RMSNorm,
gated MLPs, grouped-query attention, parallel attention + MLP). Each is compared with
TransformerLens itself: the functional forward with TL's logits, the fast sweeps with
``mi_assert.patching_sweep(engine="generic")`` (TL hooks, one full forward per stacked batch), and
the one-pass attribution with the hook-based attribution (``method="attribution"``).

Tolerances. fp32: 1e-5 absolute, on logits and sweep values of order 1; the measured errors are
at most 2.4e-6 (logits), 9e-7 (sweeps), 5e-7 (attribution) over these models and seeds 0-5:
float32 rounding through 2-3 layers. bf16 numerics (``precision="bf16"``) are compared with TL in
fp32: bf16 keeps 8 significant bits (unit roundoff 2^-9), so errors of a few percent of the
logit scale after a couple of residual blocks are its expected error, not a defect. Each bound is
a measured worst case (seeds 0-5, every family) with about 2x of margin; see the constants.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
import torch

os.environ.setdefault("TQDM_DISABLE", "1")

import mi_assert  # noqa: E402
from benchmarks.support.testing import LogitDiff, random_pair, randomise_weights  # noqa: E402
from mi_assert.backends.transformer_lens import TransformerLensHandle  # noqa: E402
from mi_assert.kernels import attribution_head_out, fast_patching_sweep, support_reason  # noqa: E402
from mi_assert.kernels.functional import full_logits, functional_model  # noqa: E402
from mi_assert.kernels.sae_splice import (  # noqa: E402
    SPLICE_KINDS,
    splice_unsupported_reason,
    spliced_next_token_ce,
)
from mi_assert.sae.metrics import per_token_ce  # noqa: E402

FP32_ATOL = 1e-5
#: bf16 logits: max |ours_bf16 - TL_fp32| / max |TL_fp32 logits| (measured worst 0.023)
BF16_LOGITS_REL = 0.04
#: bf16 patching grids (logit differences): max |error| / max |TL_fp32 logits| of the corrupted
#: run, the scale the metric is read at; a grid's own maximum can be far smaller than the logits
#: it is a difference of (measured worst 0.009)
BF16_SWEEP_REL = 0.02
#: bf16 attribution grids: max |error| / max |reference grid|, a first-order estimate whose
#: gradient runs through bf16 activations (measured worst 0.042 on the inputs here, 0.061 on
#: another clean/corrupted pair)
BF16_ATTRIBUTION_REL = 0.1

#: HookedTransformerConfig overrides of a Llama-shaped base (RMS, rotary, gated SiLU MLP)
FAMILIES: dict[str, dict[str, Any]] = {
    "llama": {},
    # Mistral / Qwen2 / Llama-3: grouped-query attention (Qwen2's q/k/v biases are random here)
    "gqa": {"n_heads": 6, "d_head": 8, "n_key_value_heads": 2},
    # Mistral-7B-v0.1 as TL loads it: "local" attention whose window (4096) spans n_ctx (2048)
    "mistral": {"n_heads": 6, "d_head": 8, "n_key_value_heads": 2, "use_local_attn": True,
                "attn_types": ["local", "local"], "window_size": 32},
    # Llama-3.1: NTK-by-parts rotary scaling (baked into TL's sin/cos tables)
    "llama31": {"use_NTK_by_parts_rope": True, "NTK_original_ctx_len": 8,
                "NTK_by_parts_factor": 4.0, "rotary_base": 500000.0},
    # YaRN rotary scaling (with its attention factor on sin/cos), also from TL's tables
    "yarn": {"use_yarn_rope": True, "yarn_factor": 4.0, "yarn_attention_factor": 1.1,
             "yarn_original_max_position_embeddings": 8},
    # Gemma 1: tanh-GELU gated MLP, multi-query attention, n_heads * d_head != d_model
    "gemma": {"act_fn": "gelu_pytorch_tanh", "n_heads": 2, "d_head": 32, "n_key_value_heads": 1},
    # Pythia / GPT-NeoX: LayerNorm, partial rotary (NeoX halves), parallel attention + MLP
    "pythia": {"normalization_type": "LN", "gated_mlp": False, "act_fn": "gelu", "rotary_dim": 4,
               "parallel_attn_mlp": True},
    # GPT-J: rotary on adjacent pairs, parallel attention + MLP, tanh GELU
    "gptj": {"normalization_type": "LN", "gated_mlp": False, "act_fn": "gelu_new", "rotary_dim": 8,
             "rotary_adjacent_pairs": True, "parallel_attn_mlp": True},
    # folded RMSNorm weights, three layers
    "rmspre": {"normalization_type": "RMSPre", "n_layers": 3},
}


def modern_model(seed: int = 0, **overrides: Any) -> Any:
    """A tiny random-weight HookedTransformer of a Llama-shaped base config plus ``overrides``.

    Biases and norm weights are random too (TL initialises them to 0/1; Llama has no biases, but
    Qwen2 has q/k/v biases), so a kernel that drops one of them fails the comparison.
    """
    from transformer_lens import HookedTransformer, HookedTransformerConfig

    cfg = {"n_layers": 2, "d_model": 48, "d_head": 12, "n_heads": 4, "d_mlp": 96, "d_vocab": 53,
           "n_ctx": 32, "act_fn": "silu", "normalization_type": "RMS",
           "positional_embedding_type": "rotary", "gated_mlp": True, "seed": seed}
    cfg.update(overrides)
    model = HookedTransformer(HookedTransformerConfig(**cfg))
    return randomise_weights(model, seed)


@pytest.fixture(scope="module", params=sorted(FAMILIES))
def family(request: Any) -> tuple[str, TransformerLensHandle]:
    return request.param, TransformerLensHandle(modern_model(seed=1, **FAMILIES[request.param]))


def generic(handle: TransformerLensHandle, clean: torch.Tensor, corrupted: torch.Tensor,
            metric: Any, site: str) -> torch.Tensor:
    """The hook-based sweep with the fast kernel out of the way."""
    positions = "all" if site == "head_out" else "each"
    result = mi_assert.patching_sweep(handle, clean, corrupted, metric, site=site,
                                      positions=positions, engine="generic")
    assert result.engine == "generic"
    return result.values


def rel_err(ours: torch.Tensor, ref: torch.Tensor) -> float:
    return float((ours.float() - ref.float()).abs().max() / ref.float().abs().max())


def test_supported_and_logits_equal_transformer_lens(family):
    name, handle = family
    assert support_reason(handle) is None, name
    clean, _, _ = random_pair(handle.d_vocab, 4, 11, seed=3)
    fm = functional_model(handle.model)
    with torch.no_grad():
        ref = handle.model(clean)
        ours = full_logits(fm, clean)
        ours_bf16 = full_logits(fm.cast(torch.bfloat16), clean)
    assert ours_bf16.dtype == torch.bfloat16
    assert (ours - ref).abs().max() <= FP32_ATOL, name
    assert rel_err(ours_bf16, ref) <= BF16_LOGITS_REL, name


@pytest.mark.parametrize("site", ["head_out", "resid_pre"])
def test_fast_sweeps_equal_the_generic_hook_path(family, site):
    name, handle = family
    clean, corrupted, metric = random_pair(handle.d_vocab, 4, 11, seed=3)
    ref = generic(handle, clean, corrupted, metric, site)
    ours = fast_patching_sweep(handle, clean, corrupted, metric, site)
    assert ours is not None and ours.shape == ref.shape
    assert (ours - ref).abs().max() <= FP32_ATOL, name
    assert (ref - ref.mean()).abs().max() > 100 * FP32_ATOL  # cells differ: not a flat grid
    bf16 = fast_patching_sweep(handle, clean, corrupted, metric, site, precision="bf16")
    with torch.no_grad():
        logit_scale = float(handle.model(corrupted).abs().max())
    assert bf16 is not None
    assert float((bf16.float() - ref).abs().max()) <= BF16_SWEEP_REL * logit_scale, name


@pytest.mark.parametrize("site", ["head_out", "resid_pre"])
def test_full_logit_metrics_and_chunks(family, site):
    """A metric without a position (every position unembedded, no last-position narrowing), a
    metric in the middle, and chunks of three variants (a chunk may start at the last MLP)."""
    name, handle = family
    clean, corrupted, metric = random_pair(handle.d_vocab, 3, 9, seed=6)

    def plain(logits: torch.Tensor) -> torch.Tensor:
        return logits[:, -2].log_softmax(-1)[torch.arange(3), metric.correct]

    mid = LogitDiff(metric.correct, metric.wrong, position=5)
    for m in (plain, mid):
        ours = fast_patching_sweep(handle, clean, corrupted, m, site)
        assert ours is not None and (ours - generic(handle, clean, corrupted, m, site)).abs().max() <= FP32_ATOL, name
    whole = fast_patching_sweep(handle, clean, corrupted, metric, site)
    by_three = fast_patching_sweep(handle, clean, corrupted, metric, site, max_variants_per_chunk=3)
    assert whole is not None and by_three is not None
    assert (whole - by_three).abs().max() <= 1e-6, name


def test_attribution_equals_the_generic_attribution(family):
    name, handle = family
    clean, corrupted, metric = random_pair(handle.d_vocab, 4, 10, seed=9)
    ref = mi_assert.patching_sweep(handle, clean, corrupted, metric, site="head_out",
                                   method="attribution").delta
    assert ref is not None
    ours = attribution_head_out(handle, clean, corrupted, metric)
    assert ours.shape == ref.shape == (handle.n_layers, handle.n_heads)
    assert (ours - ref).abs().max() <= FP32_ATOL, name
    assert ref.abs().max() > 100 * FP32_ATOL
    bf16 = attribution_head_out(handle, clean, corrupted, metric, precision="bf16")
    assert rel_err(bf16, ref) <= BF16_ATTRIBUTION_REL, name


def test_rotary_tables_beyond_tls_cache(monkeypatch):
    """TL caches sin/cos for the first min(n_ctx, 2048) positions and computes more on demand;
    the functional model must cover every position up to n_ctx the way TL does."""
    from transformer_lens.components import AbstractAttention

    monkeypatch.setattr(AbstractAttention, "ROTARY_INITIAL_CACHE_SIZE", 8)
    handle = TransformerLensHandle(modern_model(seed=2, **FAMILIES["llama31"]))
    assert handle.model.blocks[0].attn.rotary_sin.shape[0] == 8
    fm = functional_model(handle.model)
    assert fm.layers[0].rotary is not None and fm.layers[0].rotary[0].shape[0] == 32
    assert fm.layers[1].rotary is fm.layers[0].rotary  # equal tables are shared, not copied
    clean, corrupted, metric = random_pair(handle.d_vocab, 2, 20, seed=4)
    with torch.no_grad():
        assert (full_logits(fm, clean) - handle.model(clean)).abs().max() <= FP32_ATOL
    ours = fast_patching_sweep(handle, clean, corrupted, metric, "head_out")
    assert ours is not None
    assert (ours - generic(handle, clean, corrupted, metric, "head_out")).abs().max() <= FP32_ATOL


def _three_variants(act: torch.Tensor) -> torch.Tensor:
    gen = torch.Generator().manual_seed(9)
    noise = torch.randn(act.shape, generator=gen).to(act)
    return torch.cat([act, 0.7 * act + 0.5 * noise, torch.zeros_like(act)])


@pytest.mark.parametrize("name", ["llama", "pythia"])
def test_ce_splice_equals_the_hook_path(name):
    handle = TransformerLensHandle(modern_model(seed=3, **FAMILIES[name]))
    fm = functional_model(handle.model)
    tokens = torch.randint(0, handle.d_vocab, (3, 10), generator=torch.Generator().manual_seed(4))
    b = tokens.shape[0]
    for kind in sorted(SPLICE_KINDS):
        if fm.parallel and kind == "hook_resid_mid":
            assert "parallel" in (splice_unsupported_reason(fm, kind) or "")
            continue
        for layer in (0, 1):
            hook = f"blocks.{layer}.{kind}"
            logits, _ = handle.run_with_edits(tokens.repeat(3, 1),
                                              {hook: lambda act: _three_variants(act[:b])})
            ref = per_token_ce(logits, tokens.repeat(3, 1)).view(3, b, -1)
            for fused in (False, True):
                ours = spliced_next_token_ce(fm, tokens, layer, kind, _three_variants, fused=fused)
                assert (ours.double() - ref).abs().max() <= 1e-4, (hook, fused)


#: configurations the functional forward does not reproduce, and the reason it must give
UNSUPPORTED: dict[str, tuple[dict[str, Any], str]] = {
    "gemma2_attn_softcap": ({"attn_scores_soft_cap": 50.0}, "attn_scores_soft_cap"),
    "gemma2_logit_softcap": ({"output_logits_soft_cap": 30.0}, "output_logits_soft_cap"),
    "gemma2_sandwich_norm": ({"use_normalization_before_and_after": True},
                             "use_normalization_before_and_after"),
    "sliding_window": ({"use_local_attn": True, "attn_types": ["global", "local"],
                        "window_size": 4}, "sliding-window"),
    "qk_norm": ({"use_qk_norm": True}, "use_qk_norm"),
    "qwen1_dynamic_ntk": ({"use_dynamic_ntk_rope": True}, "use_dynamic_ntk_rope"),
    "alibi": ({"positional_embedding_type": "alibi"}, "alibi"),
}


@pytest.mark.parametrize("case", sorted(UNSUPPORTED))
def test_unsupported_features_fall_back_with_their_reason(case):
    overrides, expected = UNSUPPORTED[case]
    try:
        model = modern_model(seed=5, **overrides)
    except (AssertionError, ValueError) as exc:  # TL itself refuses the configuration
        pytest.skip(f"TransformerLens cannot build {case}: {exc}")
    handle = TransformerLensHandle(model)
    reason = support_reason(handle)
    assert reason is not None and expected in reason, reason
    clean, corrupted, metric = random_pair(handle.d_vocab, 2, 8, seed=2)
    assert fast_patching_sweep(handle, clean, corrupted, metric, "head_out") is None
    result = mi_assert.patching_sweep(handle, clean, corrupted, metric, site="head_out")
    assert result.engine != "kernel"


def test_bf16_transformer_lens_model_falls_back():
    handle = TransformerLensHandle(modern_model(seed=6).to(torch.bfloat16))
    assert "dtype" in (support_reason(handle) or "")


def test_a_left_padding_tokenizer_falls_back() -> None:
    from types import SimpleNamespace

    from transformer_lens import HookedTransformer, HookedTransformerConfig

    from mi_assert.backends import as_handle
    from mi_assert.kernels import support_reason

    cfg = HookedTransformerConfig(n_layers=1, d_model=16, n_ctx=8, d_head=4, n_heads=4,
                                  d_vocab=20, act_fn="gelu", seed=0)
    model = HookedTransformer(cfg)
    handle = as_handle(model)
    assert support_reason(handle) is None
    model.tokenizer = SimpleNamespace(padding_side="left")  # type: ignore[assignment]
    assert "pads on the left" in (support_reason(handle) or "")
