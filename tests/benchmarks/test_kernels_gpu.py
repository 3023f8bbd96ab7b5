"""GPU benchmarks of the fast kernels, each against TransformerLens (and nnsight) in-session.

GPT-2-small shape with random weights, fp32. Ratios and errors go into ``extra_info``; nothing
here asserts a wall-clock limit (speed is reported, not asserted), but every benchmark asserts
that the fast result equals the reference to 1e-4.
"""

from __future__ import annotations

import pytest
import torch

from benchmarks.support import anchors
from benchmarks.support.floor import head_sweep_floor_flops
from benchmarks.support.testing import gpt2_twins, random_pair
from mi_assert.backends.transformer_lens import TransformerLensHandle
from mi_assert.kernels import attribution_head_out, fast_patching_sweep
from mi_assert.kernels.sae import sae_forward
from tests.benchmarks.conftest import requires_gpu, seconds_of

pytestmark = [pytest.mark.gpu, requires_gpu]

FP32_MATMUL_FLOPS = 51e12  # measured by benchmarks/run_gpu.py on the H100 (51.1-51.5 T)


@pytest.fixture(scope="module")
def twins():
    torch.set_float32_matmul_precision("highest")
    hf, tl = gpt2_twins(device="cuda")
    return hf, TransformerLensHandle(tl), anchors.nnsight_model(hf)


@pytest.mark.parametrize("batch,n_pos", [(8, 15), (64, 32)])
def test_bench_head_out_sweep(gpu_bench, benchmark, twins, batch, n_pos):
    hf, handle, nn_model = twins
    clean, corrupted, metric = random_pair(handle.d_vocab, batch, n_pos, seed=batch, device="cuda")
    with torch.no_grad():
        tl_s, ref = seconds_of(lambda: anchors.tl_head_out_sweep(handle.model, clean, corrupted,
                                                                  metric), "cuda")
        nn_s, nn_out = seconds_of(lambda: anchors.nnsight_head_out_sweep(
            nn_model, clean, corrupted, metric, handle.n_heads,
            layers_per_trace=None if batch <= 8 else 1), "cuda")
    out, median_s = gpu_bench(lambda: fast_patching_sweep(handle, clean, corrupted, metric, "head_out"),
                    "cuda", rounds=10 if batch <= 8 else 3)
    floor = head_sweep_floor_flops(12, 768, 12, 64, 3072, 50257, batch, n_pos) / FP32_MATMUL_FLOPS
    benchmark.extra_info.update(tl_s=tl_s, nnsight_s=nn_s, x_vs_tl=tl_s / median_s,
                                x_vs_nnsight=nn_s / median_s, floor_s=floor, x_floor=median_s / floor,
                                max_abs_err_vs_tl=float((out - ref).abs().max()),
                                nnsight_err_vs_tl=float((nn_out - ref).abs().max()))
    assert (out - ref).abs().max() <= 1e-4


def test_bench_resid_pre_sweep(gpu_bench, benchmark, twins):
    _, handle, _ = twins
    clean, corrupted, metric = random_pair(handle.d_vocab, 8, 15, seed=8, device="cuda")
    with torch.no_grad():
        tl_s, ref = seconds_of(lambda: anchors.tl_resid_pre_sweep(handle.model, clean, corrupted,
                                                                   metric), "cuda")
    out, median_s = gpu_bench(lambda: fast_patching_sweep(handle, clean, corrupted, metric, "resid_pre"),
                    "cuda", rounds=10)
    benchmark.extra_info.update(tl_s=tl_s, x_vs_tl=tl_s / median_s,
                                max_abs_err_vs_tl=float((out - ref).abs().max()))
    assert (out - ref).abs().max() <= 1e-4


def test_bench_attribution(gpu_bench, benchmark, twins):
    _, handle, _ = twins
    clean, corrupted, metric = random_pair(handle.d_vocab, 8, 15, seed=8, device="cuda")
    ref = anchors.tl_attribution_head_out(handle.model, clean, corrupted, metric)
    with torch.no_grad():
        for _ in range(3):
            handle.model(corrupted)
        fwd_s, _ = seconds_of(lambda: handle.model(corrupted), "cuda")
    out, median_s = gpu_bench(lambda: attribution_head_out(handle, clean, corrupted, metric), "cuda",
                    rounds=10, warmup=2)
    benchmark.extra_info.update(tl_forward_s=fwd_s,
                                forward_equivalents=median_s / fwd_s,
                                max_abs_err_vs_autograd=float((out - ref).abs().max()))
    assert (out - ref).abs().max() <= 1e-4


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_bench_sae_encode_decode(gpu_bench, benchmark, dtype):
    torch.set_float32_matmul_precision("highest")
    n, d_in, d_sae = 16384, 768, 24576
    W_enc = (torch.randn(d_in, d_sae, device="cuda") / d_in**0.5).to(dtype)
    W_dec = (torch.randn(d_sae, d_in, device="cuda") / d_sae**0.5).to(dtype)
    b_enc = (0.1 * torch.randn(d_sae, device="cuda")).to(dtype)
    b_dec = (0.1 * torch.randn(d_in, device="cuda")).to(dtype)
    x = torch.randn(n, d_in, device="cuda").to(dtype)
    a, b = torch.randn(8192, 8192, device="cuda").to(dtype), torch.randn(8192, 8192, device="cuda").to(dtype)
    for _ in range(2):
        a @ b
    mm_s, _ = seconds_of(lambda: a @ b, "cuda")
    ceiling = 2 * 8192**3 / mm_s
    with torch.no_grad():
        _, median_s = gpu_bench(lambda: sae_forward(x, W_enc, b_enc, W_dec, b_dec), "cuda", rounds=20, warmup=3)
    flops = 4 * n * d_in * d_sae
    benchmark.extra_info.update(matmul_ceiling_flops=ceiling,
                                fraction_of_ceiling=flops / median_s / ceiling)


def test_bench_sae_ce_splice(gpu_bench, benchmark, twins):
    """CE loss with an SAE spliced at blocks.8.hook_resid_pre (clean | SAE | zero), against the
    hook-based TL path on the same batch; fraction of the fp32 ceiling over the needed FLOPs."""
    from benchmarks.support.floor import splice_needed_flops
    from mi_assert.kernels.functional import functional_model
    from mi_assert.kernels.sae_splice import spliced_next_token_ce
    from mi_assert.sae.metrics import clean_sae_zero

    _, handle, _ = twins
    torch.set_float32_matmul_precision("highest")
    batch, n_pos, layer, d, d_sae = 32, 128, 8, 768, 24576
    gen = torch.Generator().manual_seed(0)
    W_enc = (torch.randn(d, d_sae, generator=gen) / d**0.5).cuda()
    W_dec = (torch.randn(d_sae, d, generator=gen) / d_sae**0.5).cuda()
    b_enc, b_dec = (0.1 * torch.randn(d_sae, generator=gen)).cuda(), (0.1 * torch.randn(d, generator=gen)).cuda()
    tokens = torch.randint(0, handle.d_vocab, (batch, n_pos), generator=gen).cuda()
    edit = clean_sae_zero(lambda a: sae_forward(a, W_enc, b_enc, W_dec, b_dec),
                          torch.ones_like(tokens, dtype=torch.bool), "resid", {})
    fm = functional_model(handle.model)
    hook = f"blocks.{layer}.hook_resid_pre"
    with torch.no_grad():
        def tl_path() -> torch.Tensor:
            return handle.model.run_with_hooks(
                tokens.repeat(3, 1), fwd_hooks=[(hook, lambda act, hook: edit(act[:batch]))],
                return_type="loss", loss_per_token=True).reshape(3, batch, -1)

        tl_path()
        tl_s, ref = seconds_of(tl_path, "cuda")
        ours, median_s = gpu_bench(lambda: spliced_next_token_ce(fm, tokens, layer, "hook_resid_pre", edit),
                                   "cuda", rounds=10, warmup=2)
    err = float((ours - ref).abs().max())
    needed = splice_needed_flops(12, d, 12, 64, 3072, handle.d_vocab, d_sae, batch, n_pos, layer)["total"]
    benchmark.extra_info.update(max_abs_err_vs_tl=err, tl_hook_path_seconds=tl_s,
                                speedup_vs_tl_hooks=tl_s / median_s,
                                fraction_of_fp32_ceiling=needed / median_s / FP32_MATMUL_FLOPS)
    assert err <= 1e-3  # per-token CE (about 11 nats) in float32
