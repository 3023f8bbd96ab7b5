"""patching_sweep: equal to TransformerLens's get_act_patch_* loops (≤ 1e-4 fp32), every engine."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest
import torch
from transformer_lens import patching as tl_patching

import mi_assert
from mi_assert import as_handle
from mi_assert.errors import MiAssertInputError

TL_FUNCTIONS = {
    ("head_out", "all"): "get_act_patch_attn_head_out_all_pos",
    ("head_out", "each"): "get_act_patch_attn_head_out_by_pos",
    ("head_v", "all"): "get_act_patch_attn_head_v_all_pos",
    ("head_pattern", "each"): "get_act_patch_attn_head_pattern_by_pos",
    ("resid_pre", "each"): "get_act_patch_resid_pre",
    ("resid_mid", "each"): "get_act_patch_resid_mid",
    ("attn_out", "each"): "get_act_patch_attn_out",
    ("mlp_out", "each"): "get_act_patch_mlp_out",
}
TOLERANCE = 1e-4


def _tl_reference(model, clean, corrupted, metric, site, positions):
    fn = getattr(tl_patching, TL_FUNCTIONS[(site, positions)])
    _, cache = model.run_with_cache(clean)
    return fn(model, corrupted, cache, lambda logits: metric(logits).mean()).cpu()


def _mlp_pairs(model):
    gen = torch.Generator().manual_seed(0)
    clean = torch.randint(0, 100, (4, 9), generator=gen)
    corrupted = clean.clone()
    corrupted[:, 2] = torch.randint(0, 100, (4,), generator=gen)
    corrupted[:, 5] = torch.randint(0, 100, (4,), generator=gen)
    metric = mi_assert.logit_diff(torch.randint(0, 100, (4,), generator=gen),
                                  torch.randint(0, 100, (4,), generator=gen))
    return clean, corrupted, metric


@pytest.mark.parametrize("engine", ["layered", "generic"])
@pytest.mark.parametrize("site,positions", list(TL_FUNCTIONS))
def test_equal_to_transformer_lens_on_a_model_with_mlps(mlp_model, site, positions, engine):
    clean, corrupted, metric = _mlp_pairs(mlp_model)
    ref = _tl_reference(mlp_model, clean, corrupted, metric, site, positions)
    result = mi_assert.patching_sweep(mlp_model, clean, corrupted, metric, site, positions=positions,
                                      engine=engine)
    assert result.values.shape == ref.shape
    assert float((result.values - ref).abs().max()) <= TOLERANCE
    assert float(ref.std()) > 1e-3  # the sweep is not trivially constant


@pytest.mark.parametrize("site,positions", [("head_out", "all"), ("resid_pre", "each"), ("attn_out", "each")])
def test_equal_to_transformer_lens_on_the_planted_model(planted_pairs, site, positions):
    handle, gt, ps = planted_pairs
    metric = mi_assert.logit_diff(ps.correct, ps.wrong)
    ref = _tl_reference(handle.model, ps.clean, ps.corrupted, metric, site, positions)
    for engine in ("layered", "generic", "auto"):
        result = mi_assert.patching_sweep(handle, ps.clean, ps.corrupted, metric, site,
                                          positions=positions, engine=engine, max_batch=32)
        assert float((result.values - ref).abs().max()) <= TOLERANCE
    if site == "head_out":  # ground truth: the induction and previous-token heads, nothing else
        norm = result.normalised()
        for layer, head in gt.heads("induction") + gt.heads("previous_token"):
            assert norm[layer, head] == pytest.approx(1.0, abs=0.02)
        others = [(la, h) for la in range(2) for h in range(4)
                  if (la, h) not in gt.heads("induction") + gt.heads("previous_token")]
        assert all(abs(float(norm[la, h])) < 0.02 for la, h in others)
        fig = result.to_figure()
        assert fig["kind"] == "heatmap" and fig["data"].shape == (2, 4)


def test_equal_on_a_trained_zoo_model_with_mlps():
    handle = mi_assert.load_model("ioi-small@s0", device="cpu")  # committed zoo checkpoint
    split = __import__("mi_assert.prompts.generators", fromlist=["make_split"]).make_split(
        handle, "ioi", 0, n_prompts=6)
    ps = split.fit
    metric = mi_assert.logit_diff(ps.correct, ps.wrong)
    for site, positions in [("head_out", "all"), ("mlp_out", "each"), ("resid_pre", "each")]:
        ref = _tl_reference(handle.model, ps.clean, ps.corrupted, metric, site, positions)
        got = mi_assert.patching_sweep(handle, ps, None, metric, site, positions=positions)
        assert float((got.values - ref).abs().max()) <= TOLERANCE


def test_attribution_patching_layout_and_recheck(mlp_model):
    clean, corrupted, metric = _mlp_pairs(mlp_model)
    exact = mi_assert.patching_sweep(mlp_model, clean, corrupted, metric, "head_out")
    attr = mi_assert.attribution_sweep(mlp_model, clean, corrupted, metric, "head_out", recheck_top_k=3)
    assert attr.values.shape == exact.values.shape == (3, 4)
    assert torch.allclose(attr.values, attr.corrupted_value + attr.delta)
    for idx in attr.rechecked:
        assert float(attr.exact_values[idx]) == pytest.approx(float(exact.values[idx]), abs=TOLERANCE)
    # a first-order estimate: correlated with the exact effects on this small random model
    a, e = attr.delta.flatten(), (exact.values - exact.corrupted_value).flatten()
    assert float(torch.corrcoef(torch.stack([a, e]))[0, 1]) > 0.5
    each = mi_assert.patching_sweep(mlp_model, clean, corrupted, metric, "resid_pre",
                                    method="attribution", positions="each")
    assert each.values.shape == (3, 9)
    # the exact reference: grad of the mean metric on the corrupted run, dotted with
    # (clean - corrupted) activations, summed over prompts and d_model, per layer and position
    np.testing.assert_allclose(each.delta.numpy(), _manual_resid_attribution(
        mlp_model, clean, corrupted, metric).numpy(), atol=1e-5, rtol=1e-4)
    # ground truth: before layer 0 only the corrupted tokens (positions 2 and 5) differ
    assert (each.delta[0, [0, 1, 3, 4, 6, 7, 8]] == 0).all()
    assert (each.delta[0, [2, 5]].abs() > 1e-3).all()


def _manual_resid_attribution(model, clean, corrupted, metric):
    """Attribution patching at every ``hook_resid_pre`` by hand with TransformerLens hooks."""
    names = [f"blocks.{layer}.hook_resid_pre" for layer in range(model.cfg.n_layers)]
    _, clean_cache = model.run_with_cache(clean)
    acts = {}

    def keep(act, hook):
        act.retain_grad()
        acts[hook.name] = act
        return act

    logits = model.run_with_hooks(corrupted, fwd_hooks=[(n, keep) for n in names])
    metric(logits).mean().backward()
    model.zero_grad(set_to_none=True)
    return torch.stack([((clean_cache[n] - acts[n].detach()) * acts[n].grad).sum(dim=(0, 2))
                        for n in names]).detach()


def test_attribution_is_exact_where_the_model_is_linear(planted_pairs):
    """Layer-1 heads of the planted model feed the logits linearly: attribution = exact there."""
    handle, gt, ps = planted_pairs
    exact = mi_assert.patching_sweep(handle, ps, site="head_out")
    attr = mi_assert.patching_sweep(handle, ps, site="head_out", method="attribution")
    assert torch.allclose(attr.values[1], exact.values[1], atol=1e-3)


def test_noise_direction_and_chunking(planted_pairs):
    handle, gt, ps = planted_pairs
    full = mi_assert.patching_sweep(handle, ps, site="resid_pre", positions="each")
    chunked = mi_assert.patching_sweep(handle, ps, site="resid_pre", positions="each", max_batch=16)
    assert torch.allclose(full.values, chunked.values, atol=1e-5)
    noised = mi_assert.patching_sweep(handle, ps, site="head_out", direction="noise")
    ((layer, head),) = gt.heads("induction")
    assert float(noised.values[layer, head]) == pytest.approx(noised.clean_value, abs=0.5)  # roles swap


def test_kernel_fast_path_is_used_when_present(planted_pairs, monkeypatch):
    handle, gt, ps = planted_pairs
    calls = []
    fake = types.ModuleType("mi_assert.kernels")

    def fast_patching_sweep(h, clean, corrupted, metric, site):
        calls.append(site)
        return torch.full((2, 4), 7.0) if site == "head_out" else None

    fake.fast_patching_sweep = fast_patching_sweep
    monkeypatch.setitem(sys.modules, "mi_assert.kernels", fake)
    got = mi_assert.patching_sweep(handle, ps, site="head_out")
    assert got.engine == "kernel" and float(got.values[0, 0]) == 7.0
    fallback = mi_assert.patching_sweep(handle, ps, site="resid_pre", positions="each")
    assert fallback.engine == "layered" and calls == ["head_out", "resid_pre"]
    generic = mi_assert.patching_sweep(handle, ps, site="head_out", engine="generic")
    assert generic.engine == "generic"
    with pytest.raises(MiAssertInputError, match="engine='kernel'"):
        mi_assert.patching_sweep(handle, ps, site="attn_out", positions="each", engine="kernel")


def test_sweep_bad_inputs(planted_pairs):
    handle, gt, ps = planted_pairs
    with pytest.raises(MiAssertInputError, match="Did you mean 'head_out'"):
        mi_assert.patching_sweep(handle, ps, site="head_outs")
    with pytest.raises(MiAssertInputError, match="attention-only"):
        mi_assert.patching_sweep(handle, ps, site="mlp_out", positions="each")
    with pytest.raises(MiAssertInputError, match="aligned token by token"):
        mi_assert.patching_sweep(handle, ps.clean, ps.corrupted[:, 1:], "logit_diff")
    with pytest.raises(MiAssertInputError, match="one value per prompt"):
        mi_assert.patching_sweep(handle, ps.clean, ps.corrupted, lambda lg: lg[:, -1, 0].mean())
    with pytest.raises(MiAssertInputError, match="positions="):
        mi_assert.patching_sweep(handle, ps, site="head_out", positions="some")
    assert as_handle(handle) is handle
