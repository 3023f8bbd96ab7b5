"""The kernel engine of the exact edge sweep equals the naive per-edge TransformerLens loop and
the hooks engine, on every architecture the kernels support; elsewhere ``auto`` falls back and
``engine="kernel"`` is refused with the reason."""

from __future__ import annotations

import pytest
import torch

import mi_assert
from mi_assert.edges import edge_sweep
from mi_assert.errors import MiAssertInputError
from tests.edges.conftest import random_model
from tests.edges.reference import autograd_eap, naive_exact
from tests.edges.test_eap_fast import VARIANTS

TOLERANCE = 1e-5

#: every architecture of the EAP tests that the kernels support (ALiBi is not)
KERNEL_VARIANTS = {name: kw for name, kw in VARIANTS.items() if name != "alibi"}


@pytest.fixture(scope="module")
def models():
    return {name: random_model(**kw) for name, kw in KERNEL_VARIANTS.items()}


def _assert_equal(scores, ref) -> None:
    assert scores.per_prompt.shape == ref.shape
    err = float((scores.per_prompt - ref).abs().max())
    assert err <= TOLERANCE, err
    assert float(ref.abs().max()) > 1e-2  # the comparison is not between zeros


@pytest.mark.parametrize("name", list(KERNEL_VARIANTS))
def test_kernel_equals_the_naive_loop_and_the_hooks_engine(models, name, random_pairs):
    model = models[name]
    clean, corrupted, metric = random_pairs
    kernel = edge_sweep(model, clean, corrupted, metric, engine="kernel")
    hooks = edge_sweep(model, clean, corrupted, metric, engine="hooks")
    assert (kernel.engine, hooks.engine) == ("kernel", "hooks")
    assert edge_sweep(model, clean, corrupted, metric).engine == "kernel"  # auto picks it
    _assert_equal(kernel, naive_exact(model, clean, corrupted, metric,
                                      [e.name for e in kernel.edges]))
    assert float((kernel.per_prompt - hooks.per_prompt).abs().max()) <= TOLERANCE


def test_kernel_with_grouped_query_attention_ungrouped():
    from transformer_lens import HookedTransformer, HookedTransformerConfig

    cfg = HookedTransformerConfig(n_layers=2, d_model=32, d_head=8, n_heads=4, n_key_value_heads=2,
                                  d_mlp=64, d_vocab=50, n_ctx=16, act_fn="silu", gated_mlp=True,
                                  normalization_type="RMS", positional_embedding_type="rotary",
                                  rotary_dim=8, seed=0)
    model = HookedTransformer(cfg)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    model.eval()
    model.set_ungroup_grouped_query_attention(True)
    gen = torch.Generator().manual_seed(1)
    clean = torch.randint(0, 50, (3, 7), generator=gen)
    corrupted = clean.clone()
    corrupted[:, 3] = torch.randint(0, 50, (3,), generator=gen)
    metric = mi_assert.logit_diff(torch.tensor([1, 2, 3]), torch.tensor([4, 5, 6]))
    kernel = edge_sweep(model, clean, corrupted, metric, engine="kernel")
    _assert_equal(kernel, naive_exact(model, clean, corrupted, metric,
                                      [e.name for e in kernel.edges]))
    # EAP's kernel cannot split a shared k/v projection's gradient by query head: auto falls
    # back to TransformerLens's split inputs, and asking for the kernel is refused
    eap = edge_sweep(model, clean, corrupted, metric, method="eap")
    assert eap.engine == "hooks"
    ref = autograd_eap(model, clean, corrupted, metric, [e.name for e in eap.edges])
    assert float((eap.per_prompt - ref).abs().max()) <= TOLERANCE
    with pytest.raises(MiAssertInputError, match=r"cannot run eap.*2 key/value heads for 4"):
        edge_sweep(model, clean, corrupted, metric, method="eap", engine="kernel")


def test_full_logit_metric_and_small_chunks(models, random_pairs):
    model = models["ln_mlp"]
    clean, corrupted, metric = random_pairs

    def full_logits_metric(logits):  # no .position: every position is unembedded
        return metric(logits)

    for max_batch in (None, 4, 9):
        scores = edge_sweep(model, clean, corrupted, full_logits_metric, engine="kernel",
                            max_batch=max_batch)
        _assert_equal(scores, naive_exact(model, clean, corrupted, metric,
                                          [e.name for e in scores.edges]))


def test_metric_at_an_earlier_position_and_a_subset_of_edges(models, random_pairs):
    model = models["rms_rotary"]
    clean, corrupted, _ = random_pairs
    metric = mi_assert.logit_diff(torch.tensor([1, 2, 3, 4]), torch.tensor([5, 6, 7, 8]), position=5)
    names = ["L1H2->logits", "L0H1->L1H3.k", "embed->mlp1", "mlp0->L1H0.v", "embed->L0H2.q"]
    scores = edge_sweep(model, clean, corrupted, metric, edges=names, engine="kernel")
    assert [e.name for e in scores.edges] == names
    _assert_equal(scores, naive_exact(model, clean, corrupted, metric, names))


def test_planted_model_scores_its_circuit_edges(planted_edges):
    handle, _, ps = planted_edges
    metric = mi_assert.logit_diff(ps.correct, ps.wrong)
    scores = edge_sweep(handle, ps.clean, ps.corrupted, metric, engine="kernel")
    _assert_equal(scores, naive_exact(handle.model, ps.clean, ps.corrupted, metric,
                                      [e.name for e in scores.edges]))
    assert {e.name for e, _ in scores.top(3)} == {"L0H0->L1H0.k", "L1H0->logits", "embed->L0H0.v"}


def test_unsupported_models_fall_back_or_are_refused(random_pairs):
    model = random_model(attn_only=False, positions="alibi")
    clean, corrupted, metric = random_pairs
    assert edge_sweep(model, clean, corrupted, metric).engine == "hooks"
    with pytest.raises(MiAssertInputError, match=r"engine='kernel'.*positional_embedding_type='alibi'"):
        edge_sweep(model, clean, corrupted, metric, engine="kernel")


def test_bad_engine_arguments(models, random_pairs):
    clean, corrupted, metric = random_pairs
    model = models["ln_mlp"]
    with pytest.raises(MiAssertInputError, match=r"engine='fast'.*allowed 'auto', 'kernel', 'hooks'"):
        edge_sweep(model, clean, corrupted, metric, engine="fast")
