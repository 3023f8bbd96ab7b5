"""The fast EAP / EAP-IG paths (no split inputs; head-input gradients from the q/k/v gradients
through W_Q/K/V and ln1's Jacobian), on TransformerLens hooks and on the functional kernel,
equal the split-input path and the autograd references."""

from __future__ import annotations

from unittest import mock

import pytest
import torch

import mi_assert
import mi_assert.edges.eap as eap
import mi_assert.edges.eap_kernel as eap_kernel
import mi_assert.edges.sweep as sweep
from mi_assert.edges import edge_sweep
from mi_assert.edges.eap import fast_path_supported
from tests.edges.conftest import random_model
from tests.edges.reference import autograd_eap
from tests.edges.test_eap_ig import autograd_eap_ig

#: fp32: 1e-5 absolute, or 2e-6 of the largest score (about 20 ulps there), as in test_eap.py
TOLERANCE, RELATIVE = 1e-5, 2e-6

VARIANTS = {
    "ln_mlp": dict(attn_only=False),
    "ln_attn_only": dict(attn_only=True),
    "no_norm": dict(attn_only=False, normalization=None),
    "rms_rotary": dict(attn_only=False, normalization="RMS", positions="rotary"),
    "ln_pre": dict(attn_only=False, normalization="LNPre"),
    "rms_pre": dict(attn_only=False, normalization="RMSPre"),
    "parallel": dict(attn_only=False, parallel=True),
    "alibi": dict(attn_only=False, positions="alibi"),
}


@pytest.fixture(scope="module")
def models():
    return {name: random_model(**kw) for name, kw in VARIANTS.items()}


def _split_path(model, *args, **kwargs):
    """The sweep with the fast paths switched off: split inputs, as before."""
    with mock.patch.object(sweep, "fast_path_supported", lambda _: False):
        return edge_sweep(model, *args, engine="hooks", **kwargs)


#: "auto" runs the functional kernel where the kernels support the model (all but alibi here)
ENGINES = ["auto", "hooks"]
KERNEL_UNSUPPORTED = {"alibi"}


def _check_engine(scores, engine: str, name: str) -> None:
    expected = "kernel" if engine == "auto" and name not in KERNEL_UNSUPPORTED else "hooks"
    assert scores.engine == expected


def _err(ours, ref) -> float:
    err = float((ours - ref).abs().max())
    assert err <= max(TOLERANCE, RELATIVE * float(ref.abs().max())), err
    return err


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("name", list(VARIANTS))
def test_eap_equals_split_inputs_and_autograd(models, name, engine, random_pairs):
    model = models[name]
    assert fast_path_supported(model)
    clean, corrupted, metric = random_pairs
    fast = edge_sweep(model, clean, corrupted, metric, method="eap", engine=engine)
    _check_engine(fast, engine, name)
    split = _split_path(model, clean, corrupted, metric, method="eap")
    ref = autograd_eap(model, clean, corrupted, metric, [e.name for e in fast.edges])
    assert fast.edges == split.edges and fast.per_prompt.shape == ref.shape
    assert float((fast.per_prompt - split.per_prompt).abs().max()) <= TOLERANCE
    _err(fast.per_prompt, ref)
    assert float(ref.abs().max()) > 1e-2
    # the corrupted metric now comes from the gradient run: the same numbers (the kernel's
    # functional forward: to float32 rounding)
    on_kernel = fast.engine == "kernel"
    torch.testing.assert_close(fast.corrupted_per_prompt, split.corrupted_per_prompt,
                               rtol=2e-6 if on_kernel else 0, atol=1e-6)
    torch.testing.assert_close(fast.clean_per_prompt, split.clean_per_prompt,
                               rtol=2e-6 if on_kernel else 0, atol=1e-6 if on_kernel else 0)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("name", ["ln_mlp", "ln_attn_only", "rms_rotary", "rms_pre",
                                  "parallel"])
def test_eap_ig_equals_split_inputs_and_autograd(models, name, engine, random_pairs):
    model = models[name]
    clean, corrupted, metric = random_pairs
    fast = edge_sweep(model, clean, corrupted, metric, method="eap_ig", steps=4, engine=engine)
    _check_engine(fast, engine, name)
    split = _split_path(model, clean, corrupted, metric, method="eap_ig", steps=4)
    assert float((fast.per_prompt - split.per_prompt).abs().max()) <= TOLERANCE
    if name != "rms_rotary":  # the reference interpolates hook_pos_embed, which rotary lacks
        ref = autograd_eap_ig(model, clean, corrupted, metric, [e.name for e in fast.edges], 4)
        assert float((fast.per_prompt - ref).abs().max()) <= TOLERANCE
    assert not fast.per_prompt.requires_grad


@pytest.mark.parametrize("engine", ["kernel", "hooks"])
def test_eap_ig_steps_in_chunks_equal_stacked(models, engine, random_pairs):
    """A memory budget of one step per run gives the numbers of all steps in one run."""
    model = models["ln_mlp"]
    clean, corrupted, metric = random_pairs
    stacked = edge_sweep(model, clean, corrupted, metric, method="eap_ig", steps=5, engine=engine)
    module = eap_kernel if engine == "kernel" else eap
    with mock.patch.object(module, "GRAD_CPU_BUDGET_BYTES", 1):
        if engine == "hooks":
            assert eap._grad_rows(model, 4, 8, 5) == 1
        chunked = edge_sweep(model, clean, corrupted, metric, method="eap_ig", steps=5,
                             engine=engine)
    assert float((stacked.per_prompt - chunked.per_prompt).abs().max()) <= TOLERANCE


@pytest.mark.parametrize("engine", ["kernel", "hooks"])
def test_planted_model(planted_edges, engine):
    handle, _, ps = planted_edges
    assert fast_path_supported(handle.model)
    metric = mi_assert.logit_diff(ps.correct, ps.wrong)
    names = None
    for method, steps in (("eap", None), ("eap_ig", 5)):
        fast = edge_sweep(handle, ps, metric=metric, method=method, steps=steps, engine=engine)
        split = _split_path(handle, ps, metric=metric, method=method, steps=steps)
        names = [e.name for e in fast.edges]
        ref = (autograd_eap(handle.model, ps.clean, ps.corrupted, metric, names)
               if method == "eap" else
               autograd_eap_ig(handle.model, ps.clean, ps.corrupted, metric, names, 5))
        _err(fast.per_prompt, split.per_prompt)
        _err(fast.per_prompt, ref)


def test_selected_edges_and_the_model_left_as_found(models, random_pairs):
    model = models["ln_mlp"]
    clean, corrupted, metric = random_pairs
    full = edge_sweep(model, clean, corrupted, metric, method="eap")
    some = ["L0H1->L1H2.q", "mlp0->L1H0.v", "L1H3->logits", "embed->mlp1", "L0H0->mlp0"]
    part = edge_sweep(model, clean, corrupted, metric, method="eap", edges=some)
    torch.testing.assert_close(part.per_prompt, full.per_prompt[[full.index(e) for e in some]],
                               rtol=0, atol=1e-6)
    assert not model.cfg.use_hook_mlp_in and not model.cfg.use_split_qkv_input
    assert all(not hp.fwd_hooks for hp in model.hook_dict.values())


def test_unsupported_models_fall_back_to_split_inputs(models, random_pairs):
    model = models["ln_attn_only"]
    clean, corrupted, metric = random_pairs
    fast = edge_sweep(model, clean, corrupted, metric, method="eap")
    model.cfg.use_split_qkv_input = True  # the user's own split inputs: neither fast path
    try:
        assert not fast_path_supported(model)
        with mock.patch.object(sweep, "attribution_run", side_effect=AssertionError):
            fallback = edge_sweep(model, clean, corrupted, metric, method="eap")
    finally:
        model.cfg.use_split_qkv_input = False
    assert float((fast.per_prompt - fallback.per_prompt).abs().max()) <= TOLERANCE
    double = random_model(attn_only=True).to(torch.float64)
    double.cfg.dtype = torch.float64
    assert fast_path_supported(double)
    half = random_model(attn_only=True)
    half.cfg.dtype = torch.bfloat16
    assert not fast_path_supported(half)


@pytest.mark.parametrize("method", ["eap", "eap_ig"])
def test_kernel_with_a_full_logit_metric_and_a_subset_of_edges(models, method, random_pairs):
    """A metric without ``.position`` reads every position (no narrowed last layer), and a
    subset of edges contracts only the receivers it names."""
    model = models["rms_rotary"]
    clean, corrupted, metric = random_pairs

    def full_logits_metric(logits):
        return metric(logits)

    names = ["L1H2->logits", "L0H1->L1H3.k", "embed->mlp1", "mlp0->L1H0.v", "embed->L0H2.q"]
    steps = None if method == "eap" else 3
    kernel = edge_sweep(model, clean, corrupted, full_logits_metric, method=method, steps=steps,
                        edges=names, engine="kernel")
    hooks = edge_sweep(model, clean, corrupted, full_logits_metric, method=method, steps=steps,
                       edges=names, engine="hooks")
    assert [e.name for e in kernel.edges] == names
    assert float(hooks.per_prompt.abs().max()) > 1e-3
    _err(kernel.per_prompt, hooks.per_prompt)
