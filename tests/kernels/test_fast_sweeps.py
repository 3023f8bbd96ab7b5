"""fast_patching_sweep and attribution_head_out against TransformerLens, on the CPU."""

from __future__ import annotations

import os

import pytest
import torch

os.environ.setdefault("TQDM_DISABLE", "1")

from benchmarks.support import anchors
from benchmarks.support.testing import LogitDiff, random_pair, random_tl_model  # noqa: E402
from mi_assert.backends.transformer_lens import TransformerLensHandle  # noqa: E402
from mi_assert.errors import MiAssertInputError  # noqa: E402
from mi_assert.kernels import attribution_head_out, fast_patching_sweep  # noqa: E402

ATOL = 1e-4


@pytest.fixture(scope="module")
def gpt2_like() -> TransformerLensHandle:
    """Tiny GPT-2-shaped model: LN, MLPs, biases and LN weights all random."""
    return TransformerLensHandle(random_tl_model(n_layers=2, d_model=32, n_heads=4, d_mlp=64,
                                                 d_vocab=61, n_ctx=24, seed=1))


def induction_batch(handle, batch: int = 4, half: int = 8, seed: int = 0):
    """BOS + random tokens repeated twice; corrupted = the second half re-drawn. The metric is
    the logit difference for the true next token at the last position."""
    gen = torch.Generator().manual_seed(seed)
    vocab = handle.d_vocab
    first = torch.randint(1, vocab, (batch, half), generator=gen)
    bos = torch.zeros(batch, 1, dtype=torch.long)
    clean = torch.cat([bos, first, first[:, :-1]], dim=1)
    corrupted = torch.cat([bos, first, torch.randint(1, vocab, (batch, half - 1), generator=gen)], 1)
    correct = first[:, -1]
    wrong = (correct % (vocab - 1)) + 1
    return clean, corrupted, LogitDiff(correct, wrong, position=-1)


@pytest.mark.parametrize("model_name", ["planted", "gpt2_like"])
def test_head_out_equals_transformer_lens(model_name, request, planted_handle, gpt2_like):
    handle = planted_handle if model_name == "planted" else gpt2_like
    if model_name == "planted":
        clean, corrupted, metric = induction_batch(handle)
    else:
        clean, corrupted, metric = random_pair(handle.d_vocab, 4, 11, seed=3)
    ours = fast_patching_sweep(handle, clean, corrupted, metric, "head_out")
    ref = anchors.tl_head_out_sweep(handle.model, clean, corrupted, metric)
    assert ours is not None and ours.shape == (handle.n_layers, handle.n_heads)
    assert (ours - ref).abs().max() <= ATOL
    assert ref.abs().max() > 10 * ATOL  # the comparison is not between two near-zero grids


def test_planted_head_sweep_finds_the_induction_head(planted_handle):
    """Ground truth: only the planted induction head recovers the clean logit difference."""
    clean, corrupted, metric = induction_batch(planted_handle)
    ours = fast_patching_sweep(planted_handle, clean, corrupted, metric, "head_out")
    assert ours is not None
    (layer, head), = planted_handle.meta["ground_truth"].heads("induction")
    assert int(ours.flatten().argmax()) == layer * planted_handle.n_heads + head


@pytest.mark.parametrize("model_name", ["planted", "gpt2_like"])
def test_resid_pre_equals_transformer_lens(model_name, planted_handle, gpt2_like):
    handle = planted_handle if model_name == "planted" else gpt2_like
    clean, corrupted, metric = random_pair(handle.d_vocab, 3, 7, seed=5)
    ours = fast_patching_sweep(handle, clean, corrupted, metric, "resid_pre")
    ref = anchors.tl_resid_pre_sweep(handle.model, clean, corrupted, metric)
    assert ours is not None and ours.shape == (handle.n_layers, 7)
    assert (ours - ref).abs().max() <= ATOL


def test_metric_position_in_the_middle(gpt2_like):
    """Positions after the metric's are dropped; resid patches there equal the baseline."""
    clean, corrupted, metric = random_pair(gpt2_like.d_vocab, 3, 8, seed=6)
    mid = LogitDiff(metric.correct, metric.wrong, position=4)
    for site, ref_fn in (("head_out", anchors.tl_head_out_sweep),
                         ("resid_pre", anchors.tl_resid_pre_sweep)):
        ours = fast_patching_sweep(gpt2_like, clean, corrupted, mid, site)
        ref = ref_fn(gpt2_like.model, clean, corrupted, mid)
        assert ours is not None and (ours - ref).abs().max() <= ATOL


def test_metric_without_position_uses_full_logits(gpt2_like):
    clean, corrupted, metric = random_pair(gpt2_like.d_vocab, 3, 8, seed=7)

    def plain(logits: torch.Tensor) -> torch.Tensor:  # no .position / .at_position
        return logits[:, -2].log_softmax(-1)[torch.arange(3), metric.correct]

    ours = fast_patching_sweep(gpt2_like, clean, corrupted, plain, "head_out")
    ref = anchors.tl_head_out_sweep(gpt2_like.model, clean, corrupted, plain)
    assert ours is not None and (ours - ref).abs().max() <= ATOL


@pytest.mark.parametrize("site", ["head_out", "resid_pre"])
def test_chunking_gives_the_unchunked_answer(gpt2_like, site):
    clean, corrupted, metric = random_pair(gpt2_like.d_vocab, 3, 7, seed=8)
    whole = fast_patching_sweep(gpt2_like, clean, corrupted, metric, site)
    by_five = fast_patching_sweep(gpt2_like, clean, corrupted, metric, site,
                                  max_variants_per_chunk=5)
    tiny_budget = fast_patching_sweep(gpt2_like, clean, corrupted, metric, site,
                                      memory_budget_bytes=1)  # one variant per chunk
    assert whole is not None and by_five is not None and tiny_budget is not None
    assert (whole - by_five).abs().max() <= 1e-6
    assert (whole - tiny_budget).abs().max() <= 1e-6


def test_attribution_equals_autograd_reference(gpt2_like, planted_handle):
    for handle in (gpt2_like, planted_handle):
        clean, corrupted, metric = random_pair(handle.d_vocab, 4, 10, seed=9)
        ours = attribution_head_out(handle, clean, corrupted, metric)
        ref = anchors.tl_attribution_head_out(handle.model, clean, corrupted, metric)
        assert ours.shape == (handle.n_layers, handle.n_heads)
        assert (ours - ref).abs().max() <= ATOL
        assert ref.abs().max() > 10 * ATOL


def test_weight_edits_invalidate_the_fused_weights():
    handle = TransformerLensHandle(random_tl_model(seed=2))
    clean, corrupted, metric = random_pair(handle.d_vocab, 2, 7, seed=1)
    before = fast_patching_sweep(handle, clean, corrupted, metric, "head_out")
    with torch.no_grad():
        handle.model.blocks[1].attn.W_O.mul_(3.0)
    after = fast_patching_sweep(handle, clean, corrupted, metric, "head_out")
    ref = anchors.tl_head_out_sweep(handle.model, clean, corrupted, metric)
    assert before is not None and after is not None
    assert (after - before).abs().max() > 1e-3  # the edit changed the answer ...
    assert (after - ref).abs().max() <= ATOL  # ... and the fast path followed it


def test_unsupported_cases_return_none(gpt2_like):
    clean, corrupted, metric = random_pair(gpt2_like.d_vocab, 2, 6, seed=2)
    assert fast_patching_sweep(gpt2_like, clean, corrupted, metric, "mlp_out") is None

    class OtherBackend:
        backend = "nnsight"

    assert fast_patching_sweep(OtherBackend(), clean, corrupted, metric, "head_out") is None

    from transformer_lens import HookedTransformer, HookedTransformerConfig

    alibi = HookedTransformer(HookedTransformerConfig(
        n_layers=1, d_model=16, d_head=4, n_heads=4, d_mlp=32, d_vocab=61, n_ctx=16,
        act_fn="gelu", positional_embedding_type="alibi"))
    assert fast_patching_sweep(TransformerLensHandle(alibi), clean, corrupted, metric,
                               "head_out") is None

    hooked = random_tl_model(seed=4)
    hooked.blocks[0].attn.hook_z.add_hook(lambda act, hook: act * 0)
    assert fast_patching_sweep(TransformerLensHandle(hooked), clean, corrupted, metric,
                               "head_out") is None
    hooked.reset_hooks()


def test_bad_inputs_raise_clear_errors(gpt2_like):
    clean, corrupted, metric = random_pair(gpt2_like.d_vocab, 2, 6, seed=2)
    with pytest.raises(MiAssertInputError, match="same shape"):
        fast_patching_sweep(gpt2_like, clean, corrupted[:, :5], metric, "head_out")
    with pytest.raises(MiAssertInputError, match="precision"):
        fast_patching_sweep(gpt2_like, clean, corrupted, metric, "head_out", precision="fp8")
    with pytest.raises(IndexError, match="outside"):
        fast_patching_sweep(gpt2_like, clean, corrupted, LogitDiff(metric.correct, metric.wrong, 9),
                            "head_out")
