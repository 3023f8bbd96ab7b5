"""CPU speed of our SAE reconstruction metrics vs SAELens's run_evals, same process.

Both compute explained variance (pooled and legacy), MSE, cosine, L0 and the three CE losses
(clean, SAE spliced in, zero-ablated) on the same 32 x 41 tokens of planted-induction@s0 at
blocks.0.hook_resid_post with the basis SAE. The ratio run_evals / ours goes to extra_info.
"""

from __future__ import annotations

import time

import pytest
import torch

HOOK = "blocks.0.hook_resid_post"


@pytest.fixture(scope="module")
def setup():
    from mi_assert import load_model
    from mi_assert.prompts import repeated_tokens
    from mi_assert.sae.synthetic import basis_sae

    handle = load_model("planted-induction@s0", device="cpu")
    tokens = repeated_tokens(32, 20, 64, seed=1, bos_token_id=0)
    return handle, basis_sae(handle.d_model, HOOK), tokens


def _median_seconds(fn, repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def test_bench_sae_metrics_vs_run_evals(benchmark, setup):
    from mi_assert.sae.metrics import measure_on_model
    from tests.sae.test_against_saelens import saelens_run_evals

    handle, sae, tokens = setup
    threads = torch.get_num_threads()
    torch.set_num_threads(2)  # both sides on 2 threads; restored so later tests keep theirs
    try:
        saelens_run_evals(handle, sae, tokens)  # warm up (imports, allocations)
        ref_s = _median_seconds(lambda: saelens_run_evals(handle, sae, tokens))
        benchmark.pedantic(lambda: measure_on_model(handle, sae, tokens, HOOK), rounds=5,
                           warmup_rounds=1)
    finally:
        torch.set_num_threads(threads)
    if benchmark.stats is None:  # pytest-benchmark disables itself under xdist
        pytest.skip("benchmarks are disabled under pytest-xdist (-n): run serially to time")
    ours_s = benchmark.stats.stats.median
    benchmark.extra_info.update(run_evals_s=ref_s, ours_s=ours_s, run_evals_over_ours=ref_s / ours_s,
                                tokens=list(tokens.shape), threads=2)
