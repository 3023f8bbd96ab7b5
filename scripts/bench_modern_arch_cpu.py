"""All-heads patching sweep on a small Llama-shaped model: fast kernel vs the hook-based engines.

A random-weight HookedTransformer with Llama's structure (RMSNorm, rotary positions, gated SiLU
MLP, grouped-query attention) at a CPU-sized shape. In one process, the same sweep
(``site="head_out"``, every layer x head, clean z patched at all positions, logit-difference
metric at the last position) runs through

* ``kernel``: ``mi_assert.kernels.fast_patching_sweep`` (stacked variants, shared prefix),
* ``layered``: ``patching_sweep(engine="layered")`` (TL ``start_at_layer`` + hooks: what
  ``engine="auto"`` ran on these models before the kernels covered them),
* ``generic``: ``patching_sweep(engine="generic")`` (every backend's path: full forwards),

and prints the median wall time of each and the largest difference from the generic result.

    OMP_NUM_THREADS=1 python scripts/bench_modern_arch_cpu.py [--threads 1] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("TQDM_DISABLE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

import mi_assert  # noqa: E402
from benchmarks.support.testing import random_pair  # noqa: E402
from mi_assert.backends.transformer_lens import TransformerLensHandle  # noqa: E402
from mi_assert.kernels import fast_patching_sweep, support_reason  # noqa: E402

SHAPE: dict[str, Any] = {
    "n_layers": 4, "d_model": 256, "n_heads": 8, "d_head": 32, "n_key_value_heads": 2,
    "d_mlp": 704, "d_vocab": 2048, "n_ctx": 64, "act_fn": "silu", "normalization_type": "RMS",
    "positional_embedding_type": "rotary", "gated_mlp": True, "rotary_base": 500000.0,
}
BATCH, N_POS = 16, 32


def llama_shaped(seed: int = 0) -> Any:
    from transformer_lens import HookedTransformer, HookedTransformerConfig

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        model = HookedTransformer(HookedTransformerConfig(**SHAPE, seed=seed))
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(".w"):
                p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=gen))
            elif p.dim() > 1:
                p.copy_(torch.randn(p.shape, generator=gen) / p.shape[-2] ** 0.5)
    return model.eval()


def median_time(fn: Callable[[], Any], repeats: int) -> tuple[Any, float]:
    out = fn()  # warm-up (and the fast path's one-time self-check)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return out, statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    handle = TransformerLensHandle(llama_shaped())
    assert support_reason(handle) is None, support_reason(handle)
    clean, corrupted, metric = random_pair(SHAPE["d_vocab"], BATCH, N_POS, seed=0)

    def engine(name: str) -> Callable[[], torch.Tensor]:
        return lambda: mi_assert.patching_sweep(handle, clean, corrupted, metric, site="head_out",
                                                engine=name).values  # type: ignore[arg-type]

    runs = {
        "kernel": lambda: fast_patching_sweep(handle, clean, corrupted, metric, "head_out"),
        "layered": engine("layered"),
        "generic": engine("generic"),
    }
    results = {name: median_time(fn, args.repeats) for name, fn in runs.items()}
    reference = results["generic"][0]
    print(f"torch {torch.__version__}, {args.threads} thread(s), median of {args.repeats}")
    print(f"model {SHAPE}, {BATCH} prompts x {N_POS} tokens, "
          f"{SHAPE['n_layers'] * SHAPE['n_heads']} head variants")
    for name, (values, seconds) in results.items():
        diff = float((values.float() - reference.float()).abs().max())
        speedup = results["generic"][1] / seconds
        print(f"{name:8s} {seconds:8.3f} s   {speedup:5.2f}x vs generic   max |diff| {diff:.1e}")


if __name__ == "__main__":
    main()
