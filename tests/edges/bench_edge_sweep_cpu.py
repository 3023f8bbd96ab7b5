"""CPU benchmark (a script, not a test): batched exact edge sweep vs a naive per-edge TL loop.

Model: a random GPT-2-shaped HookedTransformer (4 layers, d_model 128, 8 heads, d_mlp 512,
LayerNorm, d_vocab 1000; 1,519 edges), batch 8 x 16 tokens, logit difference at the last
position. Both run in this process; the naive loop (``tests/edges/reference.py``: one
``run_with_hooks`` per edge) is timed once, the sweep best of ``--repeats``. Run:

    OMP_NUM_THREADS=1 .venv/bin/python -m tests.edges.bench_edge_sweep_cpu
"""

from __future__ import annotations

import argparse
import time

import torch

import mi_assert
from mi_assert.edges import edge_sweep
from tests.benchmarks.test_sweep_cpu import BATCH, D_MODEL, D_VOCAB, N_HEADS, N_LAYERS, SEQ
from tests.benchmarks.test_sweep_cpu import small_gpt2_shaped_setup as setup
from tests.edges.reference import naive_exact


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    model, clean, corrupted, metric = setup()
    edge_sweep(model, clean[:2], corrupted[:2], mi_assert.logit_diff(metric.correct_ids[:2],
                                                                     metric.wrong_ids[:2]))  # warm-up
    sweep_seconds = float("inf")
    for _ in range(args.repeats):
        start = time.perf_counter()
        scores = edge_sweep(model, clean, corrupted, metric)
        sweep_seconds = min(sweep_seconds, time.perf_counter() - start)
    start = time.perf_counter()
    ref = naive_exact(model, clean, corrupted, metric, [e.name for e in scores.edges])
    naive_seconds = time.perf_counter() - start
    err = float((scores.per_prompt - ref).abs().max())
    print(f"{N_LAYERS}L d{D_MODEL} {N_HEADS}H d_vocab {D_VOCAB}, batch {BATCH}x{SEQ}, "
          f"{len(scores)} edges, torch threads {torch.get_num_threads()}: naive per-edge loop "
          f"{naive_seconds:.2f} s; edge_sweep exact {sweep_seconds:.2f} s (best of "
          f"{args.repeats}) = {naive_seconds / sweep_seconds:.1f}x; max abs err {err:.1e}")


if __name__ == "__main__":
    main()
