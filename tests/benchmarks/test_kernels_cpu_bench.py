"""CPU variant of the kernel benchmarks: tiny model, runs everywhere (a few seconds).

The TL reference runs in the same session; its time and the ratio go into ``extra_info``.
"""

from __future__ import annotations

import pytest
import torch

from benchmarks.support import anchors
from benchmarks.support.testing import random_pair, random_tl_model
from mi_assert.backends.transformer_lens import TransformerLensHandle
from mi_assert.kernels import fast_patching_sweep
from tests.benchmarks.conftest import seconds_of


@pytest.fixture(scope="module")
def tiny() -> TransformerLensHandle:
    return TransformerLensHandle(random_tl_model(n_layers=2, d_model=32, n_heads=4, d_mlp=64,
                                                 d_vocab=61, n_ctx=24, seed=0))


@pytest.mark.parametrize("site", ["head_out", "resid_pre"])
def test_bench_cpu_sweep(gpu_bench, benchmark, tiny, site):
    clean, corrupted, metric = random_pair(tiny.d_vocab, 4, 8, seed=0)
    ref_fn = anchors.tl_head_out_sweep if site == "head_out" else anchors.tl_resid_pre_sweep
    with torch.no_grad():
        tl_s, ref = seconds_of(lambda: ref_fn(tiny.model, clean, corrupted, metric), "cpu")
    out, median_s = gpu_bench(lambda: fast_patching_sweep(tiny, clean, corrupted, metric, site), "cpu",
                    rounds=3)
    benchmark.extra_info.update(tl_s=tl_s, x_vs_tl=tl_s / median_s,
                                max_abs_err_vs_tl=float((out - ref).abs().max()))
    assert (out - ref).abs().max() <= 1e-4
