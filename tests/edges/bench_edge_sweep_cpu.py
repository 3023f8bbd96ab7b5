"""CPU benchmark (a script, not a test): batched exact edge sweep vs a naive per-edge TL loop.

Model: a random GPT-2-shaped HookedTransformer (4 layers, d_model 128, 8 heads, d_mlp 512,
LayerNorm, d_vocab 1000; 1,519 edges), batch 8 x 16 tokens, logit difference at the last
position. All run in this process; the naive loop (``tests/edges/reference.py``: one
``run_with_hooks`` per edge) is timed once, the sweep's two engines (``kernel``, ``hooks``)
best of ``--repeats``. Run:

    OMP_NUM_THREADS=1 .venv/bin/python -m tests.edges.bench_edge_sweep_cpu [--attribution-only]

It first prints EAP and EAP-IG over all edges in forward-equivalents (their time over one plain
forward with logits on the same batch).
"""

from __future__ import annotations

import argparse
import contextlib
import time
from collections.abc import Callable
from typing import Any

import torch

import mi_assert
from mi_assert.edges import edge_sweep
from tests.benchmarks.test_sweep_cpu import BATCH, D_MODEL, D_VOCAB, N_HEADS, N_LAYERS, SEQ
from tests.benchmarks.test_sweep_cpu import small_gpt2_shaped_setup as setup
from tests.edges.reference import naive_exact


def _best(fn: Callable[[], object], repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def attribution_cost(model: Any, clean: Any, corrupted: Any, metric: Any, repeats: int) -> str:
    """EAP and EAP-IG over every edge, in forward-equivalents: their time over the time of one
    plain forward pass with logits over the same clean batch (same process; the three are timed
    in interleaved rounds, best of ``repeats`` each, so a slow spell of a shared machine hits
    them alike)."""
    runs: dict[str, Callable[[], object]] = {
        "forward": lambda: model(clean),
        "eap": lambda: edge_sweep(model, clean, corrupted, metric, method="eap"),
        "eap_ig": lambda: edge_sweep(model, clean, corrupted, metric, method="eap_ig", steps=5),
    }
    best = dict.fromkeys(runs, float("inf"))
    for _ in range(repeats):
        for name, fn in runs.items():
            with torch.no_grad() if name == "forward" else contextlib.nullcontext():
                best[name] = min(best[name], _best(fn, 1))
    forward, eap, ig = best["forward"], best["eap"], best["eap_ig"]
    return (f"one forward {forward * 1e3:.1f} ms; eap {eap * 1e3:.1f} ms = "
            f"{eap / forward:.1f} forward-equivalents; eap_ig (5 steps) {ig * 1e3:.1f} ms = "
            f"{ig / forward:.1f} forward-equivalents")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--attribution-only", action="store_true",
                        help="only EAP / EAP-IG in forward-equivalents (skip the slow naive loop)")
    args = parser.parse_args()
    model, clean, corrupted, metric = setup()
    print(attribution_cost(model, clean, corrupted, metric, max(args.repeats, 10)))
    if args.attribution_only:
        return
    edge_sweep(model, clean[:2], corrupted[:2], mi_assert.logit_diff(metric.correct_ids[:2],
                                                                     metric.wrong_ids[:2]))  # warm-up
    timed: dict[str, tuple[float, Any]] = {}
    for engine in ("kernel", "hooks"):
        seconds = float("inf")
        for _ in range(args.repeats):
            start = time.perf_counter()
            scores = edge_sweep(model, clean, corrupted, metric, engine=engine)
            seconds = min(seconds, time.perf_counter() - start)
        timed[engine] = (seconds, scores)
    start = time.perf_counter()
    ref = naive_exact(model, clean, corrupted, metric, [e.name for e in scores.edges])
    naive_seconds = time.perf_counter() - start
    print(f"{N_LAYERS}L d{D_MODEL} {N_HEADS}H d_vocab {D_VOCAB}, batch {BATCH}x{SEQ}, "
          f"{len(scores)} edges, torch threads {torch.get_num_threads()}: naive per-edge loop "
          f"{naive_seconds:.2f} s")
    for engine, (seconds, result) in timed.items():
        err = float((result.per_prompt - ref).abs().max())
        print(f"  edge_sweep exact, engine={engine}: {seconds:.2f} s (best of {args.repeats}) = "
              f"{naive_seconds / seconds:.1f}x; max abs err {err:.1e}")

if __name__ == "__main__":
    main()
