"""The fast kernels run on every backend: a TransformerLens handle, the bridge and nnsight over
a Hugging Face model (GPT-2, Llama, Mistral, Qwen2 with grouped-query attention, GPT-NeoX
parallel and sequential) give the generic hook path's sweeps and attribution, in fp32 exactly
and in bf16 within its tolerance; a model the kernels cannot vouch for keeps the hook path."""

from __future__ import annotations

import pytest
import torch

import mi_assert
from mi_assert.kernels import attribution_head_out, fast_patching_sweep, support_reason

FP32 = 1e-5
#: bf16 numerics from fp32 weights, relative to the largest |logit| of the corrupted run (as
#: the modern-architecture tests of the TL kernels)
BF16_RELATIVE = 0.02


def _pairs(handle, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    vocab = min(handle.d_vocab, 200)
    clean = torch.randint(2, vocab, (4, 9), generator=gen)
    corrupted = clean.clone()
    corrupted[:, 4] = torch.randint(2, vocab, (4,), generator=gen)
    metric = mi_assert.logit_diff(torch.randint(2, vocab, (4,), generator=gen),
                                  torch.randint(2, vocab, (4,), generator=gen))
    return clean, corrupted, metric


def _check_backends(handles: dict) -> None:
    for backend, handle in handles.items():
        assert support_reason(handle) is None, (backend, support_reason(handle))
        clean, corrupted, metric = _pairs(handle)
        for site in ("head_out", "resid_pre"):
            positions = "all" if site == "head_out" else "each"
            generic = mi_assert.patching_sweep(handle, clean, corrupted, metric, site,
                                               positions=positions, engine="generic").values
            fast = fast_patching_sweep(handle, clean, corrupted, metric, site)
            assert fast is not None, backend
            assert float((fast.float().cpu() - generic).abs().max()) <= FP32, (backend, site)
            auto = mi_assert.patching_sweep(handle, clean, corrupted, metric, site,
                                            positions=positions)
            assert auto.engine == "kernel", (backend, site)
            bf16 = fast_patching_sweep(handle, clean, corrupted, metric, site, precision="bf16")
            assert bf16 is not None
            scale = float(handle.forward(corrupted).abs().max())
            assert float((bf16.float().cpu() - generic).abs().max()) <= BF16_RELATIVE * scale
        grid = attribution_head_out(handle, clean, corrupted, metric)
        reference = mi_assert.patching_sweep(handle, clean, corrupted, metric, "head_out",
                                             method="attribution").delta
        assert float((grid.float().cpu() - reference).abs().max()) <= FP32, backend


def test_decoder_layouts(decoder_handles):
    _check_backends(decoder_handles)


def test_gpt2(gpt2_handles):
    _check_backends(gpt2_handles)


def test_an_edited_weight_is_seen(decoder_loader):
    handles = decoder_loader("llama")
    handle = handles["nnsight"]
    clean, corrupted, metric = _pairs(handle)
    before = fast_patching_sweep(handle, clean, corrupted, metric, "head_out")
    weight = handle.torch_module.model.layers[1].self_attn.o_proj.weight
    with torch.no_grad():
        weight.mul_(2.0)
    try:  # the twin's weights are rebuilt for the new weight version
        after = fast_patching_sweep(handle, clean, corrupted, metric, "head_out")
        generic = mi_assert.patching_sweep(handle, clean, corrupted, metric, "head_out",
                                           engine="generic").values
        assert before is not None and after is not None
        assert float((after.float() - before.float()).abs().max()) > 1e-3
        assert float((after.float().cpu() - generic).abs().max()) <= FP32
    finally:
        with torch.no_grad():
            weight.div_(2.0)


def test_unsupported_backend_models_keep_the_hook_path(decoder_loader):
    handle = decoder_loader("llama")["nnsight"]
    module = handle.torch_module
    hook = module.register_forward_hook(lambda *args: None)
    try:
        assert "hook" in (support_reason(handle) or "")
        clean, corrupted, metric = _pairs(handle)
        assert fast_patching_sweep(handle, clean, corrupted, metric, "head_out") is None
        assert mi_assert.patching_sweep(handle, clean, corrupted, metric,
                                        "head_out").engine != "kernel"
    finally:
        hook.remove()
    assert support_reason(handle) is None


@pytest.mark.parametrize("backend", ["nnsight", "bridge"])
def test_the_probe_compares_with_the_handles_own_logits(decoder_loader, backend, monkeypatch):
    """A twin that does not reproduce the backend's logits is not trusted."""
    from mi_assert.kernels import handles as kernel_handles

    handle = decoder_loader("qwen2")[backend]
    clean, corrupted, metric = _pairs(handle)
    real_forward = handle.forward
    monkeypatch.setattr(handle, "forward", lambda tokens: real_forward(tokens) + 1.0)
    kind, model = kernel_handles.underlying_model(handle)
    assert kind == "hf"
    kernel_handles._TWINS.pop(model, None)
    assert fast_patching_sweep(handle, clean, corrupted, metric, "head_out") is None
    kernel_handles._TWINS.pop(model, None)  # the next test builds it again, probed honestly
