"""Exact edge sweep = a naive one-forward-per-edge TransformerLens loop (fp32, max err 1e-5)."""

from __future__ import annotations

import pytest
import torch

import mi_assert
from mi_assert.backends.base import ModelHandle
from mi_assert.edges import EdgeGraph, edge_sweep
from tests.edges.conftest import random_model
from tests.edges.reference import naive_exact

TOLERANCE = 1e-5


def _check_equal(model, clean, corrupted, metric, **kwargs):
    scores = edge_sweep(model, clean, corrupted, metric, **kwargs)
    tl = model.model if isinstance(model, ModelHandle) else model
    ref = naive_exact(tl, clean, corrupted, metric, [e.name for e in scores.edges])
    err = float((scores.per_prompt - ref).abs().max())
    assert scores.per_prompt.shape == ref.shape
    assert err <= TOLERANCE, err
    assert torch.allclose(scores.values, ref.mean(dim=1), atol=TOLERANCE)
    assert float(ref.abs().max()) > 1e-2  # the comparison is not between zeros
    return scores, err


@pytest.mark.parametrize("fixture", ["mlp_model", "attn_only_model"])
def test_equal_to_naive_loop_on_random_models(request, fixture, random_pairs):
    model = request.getfixturevalue(fixture)
    clean, corrupted, metric = random_pairs
    scores, _ = _check_equal(model, clean, corrupted, metric)
    assert len(scores) == (110 if fixture == "mlp_model" else 81)
    assert scores.edges == EdgeGraph.from_handle(model).edges


def test_equal_to_naive_loop_with_parallel_attention_and_mlp(random_pairs):
    model = random_model(attn_only=False, parallel=True)  # GPT-J style: MLP reads resid_pre
    clean, corrupted, metric = random_pairs
    scores, _ = _check_equal(model, clean, corrupted, metric)
    assert len(scores) == 110 - 2 * 4  # no head -> MLP edges within a layer


@pytest.mark.parametrize("positions,normalization", [("rotary", "RMS"), ("alibi", "LN")])
def test_equal_to_naive_loop_with_other_positions_and_norms(random_pairs, positions, normalization):
    model = random_model(attn_only=False, normalization=normalization, positions=positions)
    clean, corrupted, metric = random_pairs
    _check_equal(model, clean, corrupted, metric)


def test_equal_to_naive_loop_on_the_planted_model(planted_edges):
    handle, _, ps = planted_edges
    metric = mi_assert.logit_diff(ps.correct, ps.wrong)
    scores, _ = _check_equal(handle, ps.clean, ps.corrupted, metric)
    assert len(scores) == 81


def test_full_logit_metrics_and_small_chunks_give_the_same_numbers(mlp_model, random_pairs):
    clean, corrupted, metric = random_pairs

    def full_logits_metric(logits):  # no .position: the sweep unembeds every position
        return metric(logits)

    _check_equal(mlp_model, clean, corrupted, full_logits_metric, max_batch=4)


def test_nnsight_handle_wrapping_a_hooked_transformer(planted_edges):
    handle, _, ps = planted_edges
    wrapped = mi_assert.load_model("planted-induction@s0", backend="nnsight", device="cpu")
    metric = mi_assert.logit_diff(ps.correct[:4], ps.wrong[:4])
    ours = edge_sweep(wrapped, ps.clean[:4], ps.corrupted[:4], metric)
    tl = edge_sweep(handle, ps.clean[:4], ps.corrupted[:4], metric)
    assert torch.equal(ours.per_prompt, tl.per_prompt)


def test_subset_of_edges_and_prompt_set_input(planted_edges):
    handle, _, ps = planted_edges
    names = ["L1H0->logits", "L0H0->L1H0.k", "embed->L0H0.v"]
    subset = edge_sweep(handle, ps, metric="logit_diff", edges=names)
    full = edge_sweep(handle, ps, metric="logit_diff")
    assert [e.name for e in subset.edges] == names
    for name in names:
        assert subset.score(name) == pytest.approx(full.score(name), abs=1e-6)


def test_config_flags_are_restored(mlp_model, random_pairs):
    clean, corrupted, metric = random_pairs
    cfg = mlp_model.cfg
    before = (cfg.use_split_qkv_input, cfg.use_hook_mlp_in, cfg.use_attn_result)
    for method in ("exact", "eap"):
        edge_sweep(mlp_model, clean, corrupted, metric, method=method)
        assert (cfg.use_split_qkv_input, cfg.use_hook_mlp_in, cfg.use_attn_result) == before


def test_flags_are_restored_when_the_block_raises(mlp_model):
    from mi_assert.edges.tl_model import split_inputs

    with pytest.raises(RuntimeError), split_inputs(mlp_model):
        assert mlp_model.cfg.use_split_qkv_input and mlp_model.cfg.use_hook_mlp_in
        raise RuntimeError("inside")
    assert not mlp_model.cfg.use_split_qkv_input and not mlp_model.cfg.use_hook_mlp_in


def test_scores_object(planted_edges):
    handle, _, ps = planted_edges
    scores = edge_sweep(handle, ps, metric="logit_diff")
    as_dict = scores.to_dict()
    assert list(as_dict) == [e.name for e in scores.graph.edges]
    assert scores.score("L1H0->logits") == as_dict["L1H0->logits"]
    assert scores.prompt_scores("L1H0->logits").shape == (16,)
    top = scores.top(3)
    assert [abs(v) for _, v in top] == sorted((abs(v) for _, v in top), reverse=True)
    assert scores.normalised()[scores.index("L1H0->logits")] == pytest.approx(1.0, abs=0.02)
    assert scores.per_prompt.shape == (81, 16)
