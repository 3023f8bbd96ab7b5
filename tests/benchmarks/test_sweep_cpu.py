"""CPU benchmark: the batched all-heads exact sweep vs TransformerLens's loop, same process.

Model: a random GPT-2-shaped HookedTransformer (4 layers, d_model 128, 8 heads, d_mlp 512,
LayerNorm, d_vocab 1000), batch 8 × 16 tokens, logit-difference metric. The ratio
(TL time / mi-assert time) goes to ``benchmark.extra_info["speedup_vs_tl"]`` and is printed;
it is not asserted (wall-clock on shared CI machines is noisy). Run:

    pytest tests/benchmarks/test_sweep_cpu.py -q -p no:cacheprovider -s
"""

from __future__ import annotations

import time

import pytest
import torch

import mi_assert

N_LAYERS, D_MODEL, N_HEADS, D_VOCAB, BATCH, SEQ = 4, 128, 8, 1000, 8, 16


def small_gpt2_shaped_setup():
    """(model, clean, corrupted, metric): a random GPT-2-shaped model and one changed position
    (also the edge sweep's benchmark, tests/edges/bench_edge_sweep_cpu.py)."""
    from transformer_lens import HookedTransformer, HookedTransformerConfig

    cfg = HookedTransformerConfig(n_layers=N_LAYERS, d_model=D_MODEL, d_head=D_MODEL // N_HEADS,
                                  n_heads=N_HEADS, d_mlp=4 * D_MODEL, d_vocab=D_VOCAB, n_ctx=64,
                                  act_fn="gelu_new", normalization_type="LN", seed=0)
    model = HookedTransformer(cfg).eval()
    gen = torch.Generator().manual_seed(0)
    clean = torch.randint(0, D_VOCAB, (BATCH, SEQ), generator=gen)
    corrupted = clean.clone()
    corrupted[:, SEQ // 2] = torch.randint(0, D_VOCAB, (BATCH,), generator=gen)
    metric = mi_assert.logit_diff(torch.randint(0, D_VOCAB, (BATCH,), generator=gen),
                                  torch.randint(0, D_VOCAB, (BATCH,), generator=gen))
    return model, clean, corrupted, metric


@pytest.fixture(scope="module")
def setup():
    return small_gpt2_shaped_setup()


def _tl_sweep(model, clean, corrupted, metric):
    from transformer_lens import patching

    _, cache = model.run_with_cache(clean)
    return patching.get_act_patch_attn_head_out_all_pos(
        model, corrupted, cache, lambda logits: metric(logits).mean())


def _best_of(fn, repeats: int = 3) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def test_all_heads_exact_sweep_vs_transformer_lens(benchmark, setup):
    model, clean, corrupted, metric = setup
    def sweep(engine: str):
        return lambda: mi_assert.patching_sweep(model, clean, corrupted, metric, "head_out",
                                                engine=engine)

    ref = _tl_sweep(model, clean, corrupted, metric)
    tl_seconds = _best_of(lambda: _tl_sweep(model, clean, corrupted, metric))
    lines = []
    for engine in ("layered", "generic", "auto"):
        result = sweep(engine)()
        assert float((result.values - ref.cpu()).abs().max()) <= 1e-4  # same numbers first
        seconds = _best_of(sweep(engine))
        benchmark.extra_info[f"{engine}_seconds"] = seconds
        benchmark.extra_info[f"{engine}_speedup_vs_tl"] = tl_seconds / seconds
        lines.append(f"{engine} ({result.engine}) {seconds * 1e3:.1f} ms = {tl_seconds / seconds:.1f}x")
    benchmark.pedantic(sweep("auto"), rounds=3, iterations=1)
    ratio = benchmark.extra_info["auto_speedup_vs_tl"]
    benchmark.extra_info.update({"tl_seconds": tl_seconds, "speedup_vs_tl": ratio, "target": 5.0})
    print(f"\nall-heads exact sweep, {N_LAYERS}L d{D_MODEL} {N_HEADS}H, batch {BATCH}x{SEQ}: "
          f"TL {tl_seconds * 1e3:.1f} ms; " + "; ".join(lines) + " (target >= 5x)")
