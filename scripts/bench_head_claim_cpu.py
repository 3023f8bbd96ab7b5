"""CPU benchmark: one default head claim vs plain TransformerLens forwards on the same prompts.

Model: a GPT-2-small-shaped ``HookedTransformer`` with random weights (12 layers, d_model 768,
12 heads, d_mlp 3072, vocab 50257; ``--small`` for a tiny dry run). Prompts: exactly the ones
the default ``assert_induction_head(model, 5, 5)`` draws (3 seeds x 4 repeat lengths x 32, i.e.
384 held-out ``BOS + r + r`` prompts), batched as the claim batches them (one condition of all
seeds at a time, 64 prompts per forward).

Each case runs in its own subprocess after the same warm-up (8 prompts through the model, one
claim on a toy model), so its peak memory is its own: the peak resident set
(``VmHWM``, reset through ``/proc/self/clear_refs`` after the model is built) minus the resident
set at that point. Times are the best of ``--repeats`` runs in that subprocess (the claim's
repeats clear mi-assert's measurement cache first, so each one measures).

Cases:

* ``forward_logits``: ``model(tokens)`` per batch, logits returned (the issue's reference);
* ``forward_to_layer``: ``model(tokens, stop_at_layer=LAYER + 1)``: the forward a claim on
  ``LAYER`` needs (no later layers, no unembedding);
* ``head_detector``: TransformerLens's ``detect_head(model, prompt, "induction_head")`` per
  prompt (what TL does for a list of prompts; ``to_tokens`` passes the ids through: the random
  model has no tokenizer), on every 8th prompt, the time scaled by 8;
* ``claim``: ``assert_induction_head(model, LAYER, HEAD)`` on the raw model (random weights:
  it fails, the time includes building the failure message);
* ``claim_again``: the same claim a second time on the same raw model object.

Run (prints a markdown table; ``--json`` also writes the numbers):

    OMP_NUM_THREADS=2 python scripts/bench_head_claim_cpu.py
    OMP_NUM_THREADS=1 python scripts/bench_head_claim_cpu.py --seeds 1 --rounds 2 --threads 1 \
        --baseline-src ../before --cases forward_logits,forward_to_layer,claim,claim_again
    python scripts/bench_head_claim_cpu.py --small --cases claim,forward_logits
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.support.process_memory import timed_repeats  # noqa: E402

CASES = ("forward_logits", "forward_to_layer", "head_detector", "claim", "claim_again")
GPT2_SMALL = dict(n_layers=12, d_model=768, n_heads=12, d_mlp=3072, d_vocab=50257, n_ctx=1024)
#: head_detector runs every DETECTOR_STRIDE-th prompt; its time is scaled up by this factor
DETECTOR_STRIDE = 8
TINY = dict(n_layers=4, d_model=64, n_heads=4, d_mlp=256, d_vocab=1000, n_ctx=128)


def _build(shape: dict[str, int]) -> Any:
    from transformer_lens import HookedTransformer, HookedTransformerConfig

    cfg = HookedTransformerConfig(
        n_layers=shape["n_layers"], d_model=shape["d_model"], n_heads=shape["n_heads"],
        d_head=shape["d_model"] // shape["n_heads"], d_mlp=shape["d_mlp"],
        d_vocab=shape["d_vocab"], n_ctx=shape["n_ctx"], act_fn="gelu_new",
        normalization_type="LN", seed=0)
    return HookedTransformer(cfg).eval()


def _claim_batches(model: Any, seeds: tuple[int, ...], batch_size: int = 64) -> list[Any]:
    """The token batches the induction claim with these sampling seeds runs, in its order."""
    import torch

    from mi_assert import as_handle
    from mi_assert.heads.prompts import DEFAULT_REPEAT_LENS, fit_repeat_lens, repeated_prompt_rows

    handle = as_handle(model)
    lens, _ = fit_repeat_lens(handle, DEFAULT_REPEAT_LENS, explicit=False)
    rows = {s: repeated_prompt_rows(handle, s, lens, 32, "heldout", 0.5) for s in seeds}
    batches = []
    for condition in zip(*rows.values(), strict=True):
        tokens = torch.cat([row.tokens for row in condition])
        batches += [tokens[i:i + batch_size] for i in range(0, len(tokens), batch_size)]
    return batches


def run_case(case: str, shape: dict[str, int], layer: int, head: int, repeats: int,
             seeds: tuple[int, ...]) -> dict[str, Any]:
    import torch

    import mi_assert
    from mi_assert.heads import measure

    torch.manual_seed(0)
    model = _build(shape)
    batches = _claim_batches(model, seeds)

    def forward_logits() -> None:
        with torch.no_grad():
            for tokens in batches:
                model(tokens)

    def forward_to_layer() -> None:
        with torch.no_grad():
            for tokens in batches:
                model(tokens, stop_at_layer=layer + 1)

    def head_detector() -> None:
        from transformer_lens.head_detector import detect_head

        model.to_tokens = lambda seq, *a, **k: seq  # ids in, ids out: no tokenizer
        with torch.no_grad():
            for tokens in batches:
                for prompt in tokens[::DETECTOR_STRIDE]:
                    detect_head(model, prompt[None], "induction_head")

    def claim() -> None:
        try:
            mi_assert.assert_induction_head(model, layer, head, seeds=seeds)
        except AssertionError:
            pass

    with torch.no_grad():  # warm-up: first-call dispatch and allocation, in no case's time
        model(batches[0][:8])
    # ... and one claim on a 1-layer toy model: the imports and code a first claim loads
    # (about 20 MiB) are paid once per process, not per claim
    toy = _build(dict(n_layers=1, d_model=16, n_heads=2, d_mlp=32, d_vocab=60, n_ctx=80))
    mi_assert.check_induction_head(toy, 0, 0, seeds=(0,))
    del toy
    measure.clear_cache()
    work = {"forward_logits": forward_logits, "forward_to_layer": forward_to_layer,
            "head_detector": head_detector, "claim": claim, "claim_again": claim}[case]
    if case == "claim_again":
        measure.clear_cache()
        claim()
    times, cpu_times, peak_kib = timed_repeats(
        work, repeats, lambda i: measure.clear_cache() if case == "claim" and i else None)
    if case == "head_detector":
        times = [t * DETECTOR_STRIDE for t in times]
        cpu_times = [t * DETECTOR_STRIDE for t in cpu_times]
    return {"case": case, "seconds": min(times), "all_seconds": times,
            "cpu_seconds": min(cpu_times), "all_cpu_seconds": cpu_times,
            "peak_delta_mib": peak_kib / 1024, "threads": torch.get_num_threads(),
            "n_prompts": sum(len(b) for b in batches)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--repeats", type=int, default=1, help="runs per case and round")
    parser.add_argument("--rounds", type=int, default=1,
                        help="rounds over all cases (each case in a fresh process)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--layer", type=int, default=None, help="default 5 (--small: 2)")
    parser.add_argument("--head", type=int, default=None, help="default 5 (--small: 1)")
    parser.add_argument("--seeds", type=int, default=3,
                        help="sampling seeds of the claim (default 3, the claim's default: 384 "
                             "prompts; 1 runs a third of the work)")
    parser.add_argument("--small", action="store_true", help="tiny model (a dry run)")
    parser.add_argument("--baseline-src", type=Path, default=None,
                        help="a source tree (holding mi_assert/) to run the claim cases on too, "
                             "e.g. a `git worktree` of the commit before a change")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)  # a case, in this process
    args = parser.parse_args()
    shape = TINY if args.small else GPT2_SMALL
    if args.layer is None:
        args.layer = 2 if args.small else 5
    if args.head is None:
        args.head = 1 if args.small else 5
    if args.one:
        import torch

        torch.set_num_threads(args.threads)
        import mi_assert

        print(f"# mi_assert from {Path(mi_assert.__file__).parent}", file=sys.stderr)
        print(json.dumps(run_case(args.one, shape, args.layer, args.head, args.repeats,
                                  tuple(range(args.seeds)))))
        return
    results: dict[str, dict[str, Any]] = {}
    cases = args.cases.split(",")
    for case in cases:
        if case not in CASES:
            raise SystemExit(f"unknown case {case!r}; cases: {', '.join(CASES)}")
    runs = [(case, ROOT, case) for case in cases]
    if args.baseline_src is not None:  # the claim cases again, on another source tree
        runs += [(case, args.baseline_src.resolve(), f"{case} (baseline)")
                 for case in cases if case.startswith("claim")]
    for round_ in range(args.rounds):  # round-robin: load from other jobs hits every case alike
        for case, src, label in runs:
            cmd = [sys.executable, str(Path(__file__).resolve()), "--one", case,
                   "--repeats", str(args.repeats),
                   "--seeds", str(args.seeds), "--threads", str(args.threads),
                   "--layer", str(args.layer), "--head", str(args.head)]
            cmd += ["--small"] if args.small else []
            env = {**os.environ, "OMP_NUM_THREADS": str(args.threads),
                   "PYTHONPATH": f"{src}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
            out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
            if out.returncode:
                raise SystemExit(f"case {label} failed:\n{out.stderr[-4000:]}")
            if round_ == 0:
                print(next((ln for ln in out.stderr.splitlines() if ln.startswith("# mi_assert")),
                           ""), file=sys.stderr)
            result = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"# round {round_ + 1} {label}: {result['seconds']:.2f} s, "
                  f"peak +{result['peak_delta_mib']:.0f} MiB", file=sys.stderr)
            if label in results:  # best time over rounds; memory of the first round
                for key in ("seconds", "cpu_seconds"):
                    result[f"all_{key}"] = results[label][f"all_{key}"] + result[f"all_{key}"]
                    result[key] = min(result[f"all_{key}"])
                result["peak_delta_mib"] = results[label]["peak_delta_mib"]
            results[label] = result
    ref = results.get("forward_logits", {}).get("seconds")
    ref_cpu = results.get("forward_logits", {}).get("cpu_seconds")
    ref_mem = results.get("forward_to_layer", {}).get("peak_delta_mib")
    shape_text = "GPT-2-small shape" if not args.small else "tiny shape"
    print(f"\n{shape_text}, layer {args.layer} head {args.head}, "
          f"{next(iter(results.values()))['n_prompts']} prompts, {args.threads} threads\n")
    print("| case | wall s | × forwards (logits) | CPU s | × forwards (CPU) | peak RSS delta MiB "
          "| × forward-to-layer memory |")
    print("|---|---|---|---|---|---|---|")
    for case, r in results.items():
        ratio = f"{r['seconds'] / ref:.2f}" if ref else ""
        cpu_ratio = f"{r['cpu_seconds'] / ref_cpu:.2f}" if ref_cpu else ""
        mem_ratio = f"{r['peak_delta_mib'] / ref_mem:.2f}" if ref_mem else ""
        print(f"| {case} | {r['seconds']:.2f} | {ratio} | {r['cpu_seconds']:.1f} | {cpu_ratio} "
              f"| {r['peak_delta_mib']:.0f} | {mem_ratio} |")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
