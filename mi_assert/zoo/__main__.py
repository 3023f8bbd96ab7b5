"""``python -m mi_assert.zoo``: list, train, build and verify the offline model zoo.

Commands::

    python -m mi_assert.zoo list
    python -m mi_assert.zoo train attn-only-2l-induction --seed 0 [--out DIR]
    python -m mi_assert.zoo train-all [--out DIR] [--jobs 2]
    python -m mi_assert.zoo build tiny-gpt2 [--out DIR]
    python -m mi_assert.zoo train-all --weights-only --jobs 6 --out DIR   # torch only
    python -m mi_assert.zoo finalize [--out DIR]   # evaluate those, write the manifest
    python -m mi_assert.zoo verify [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, cast

from mi_assert.zoo import registry
from mi_assert.zoo.registry import CHECKPOINT_ROOT

TRAINABLE = ("attn-only-2l-induction", "ioi-small")
BUILDABLE = ("tiny-gpt2",)


def _params(entry: registry.ZooEntry, manifest: dict[str, Any]) -> str:
    models = manifest.get("models", {}).get(entry.name, {})
    counts = {rec.get("n_params") for rec in models.values()}
    counts.discard(None)
    if counts:
        return ",".join(f"{c:,}" for c in sorted(counts))
    return "-" if entry.kind != "planted" else "(built)"


def cmd_list(args: argparse.Namespace) -> int:
    from mi_assert.zoo.artifacts import read_manifest

    manifest = read_manifest(args.out)
    rows = [("name", "kind", "params", "seeds", "description")]
    for entry in registry.entries():
        seeds = "any" if len(entry.seeds) > 10 else ",".join(map(str, entry.seeds))
        rows.append((entry.name, entry.kind, _params(entry, manifest), seeds, entry.description))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row[:4], widths, strict=True)) + "  " + row[4])
    return 0


def _trainer(name: str) -> Any:
    if name == "attn-only-2l-induction":
        from mi_assert.zoo import train_induction

        return train_induction
    from mi_assert.zoo import train_ioi

    return train_ioi


def train_one(name: str, seed: int, out: Path, weights_only: bool = False) -> dict[str, Any]:
    """Train (or build) one model; ``weights_only`` skips the TransformerLens evaluation and
    the manifest (run ``finalize`` later), so training needs nothing but torch."""
    if name in TRAINABLE:
        trainer = _trainer(name)
        if weights_only:
            folder = trainer.train_to_folder(seed, out)
            return cast(dict[str, Any], json.loads((folder / "train_log.json").read_text()))
        return cast(dict[str, Any], trainer.train_and_save(seed, out))
    if name == "tiny-gpt2":
        from mi_assert.zoo import tiny_gpt2

        return tiny_gpt2.build(out)
    raise SystemExit(f"{name!r} is not trainable; trainable: {', '.join(TRAINABLE + BUILDABLE)}")


def _summary(name: str, seed: int | str, record: dict[str, Any]) -> str:
    metrics = record.get("metrics", {"final_train_loss": record.get("final_train_loss", float("nan"))})
    if "heldout" in metrics:
        m = metrics["heldout"]
        what = f"heldout acc {m['accuracy']:.3f} logit diff {m['logit_diff']:.2f} abc {m['abc_logit_diff']:.2f}"
    elif "accuracy" in metrics:
        what = f"loss {metrics['loss']:.3f} acc {metrics['accuracy']:.3f} heads {record.get('heads', {}).get('induction_heads')}"
    else:
        what = ", ".join(f"{k} {v:.3f}" for k, v in metrics.items())
    return f"{name}@s{seed}: {what} ({record['train_seconds']:.0f} s)"


def cmd_train(args: argparse.Namespace) -> int:
    entry = registry.get(args.name)
    if entry.kind == "hf":
        record = train_one(entry.name, 0, args.out)
        print(_summary(entry.name, 0, record))
        return 0
    if args.seed not in entry.seeds:
        raise SystemExit(f"{entry.name} has seeds {list(entry.seeds)}; got {args.seed}")
    record = train_one(entry.name, args.seed, args.out, args.weights_only)
    print(_summary(entry.name, args.seed, record))
    return 0


def cmd_finalize(args: argparse.Namespace) -> int:
    """Evaluate folders written with --weights-only and record them in the manifest."""
    for name in TRAINABLE:
        for seed in registry.get(name).seeds:
            if (args.out / name / f"s{seed}" / "train_log.json").exists():
                print(_summary(name, seed, _trainer(name).finalize(seed, args.out)), flush=True)
    return 0


def cmd_train_all(args: argparse.Namespace) -> int:
    jobs = [(name, seed) for name in TRAINABLE for seed in registry.get(name).seeds]
    jobs.append(("tiny-gpt2", 0))
    # each training uses one thread, so jobs run side by side without changing results
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        futures = {pool.submit(train_one, name, seed, args.out, args.weights_only and name in TRAINABLE): (name, seed)
                   for name, seed in jobs if not (args.weights_only and name not in TRAINABLE)}
        for future, (name, seed) in futures.items():
            print(_summary(name, seed, future.result()), flush=True)
    return 0


def cmd_build(args: argparse.Namespace) -> int:
    if args.name not in BUILDABLE:
        raise SystemExit(f"build makes {', '.join(BUILDABLE)}; use `train` for {args.name}")
    print(_summary(args.name, 0, train_one(args.name, 0, args.out)))
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from mi_assert.zoo.verify import verify_all

    problems = verify_all(args.out, log=print)
    if problems:
        print(f"\n{len(problems)} problem(s):")
        for p in problems:
            print("  -", p)
        return 1
    print("\nall checkpoints match the manifest")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mi_assert.zoo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("list", help="table of zoo models")
    p.add_argument("--out", type=Path, default=CHECKPOINT_ROOT)
    p.set_defaults(fn=cmd_list)
    p = sub.add_parser("train", help="train one model seed")
    p.add_argument("name", choices=TRAINABLE + BUILDABLE)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=CHECKPOINT_ROOT, help="checkpoint root (default: the package's)")
    p.add_argument("--weights-only", action="store_true", help="train only (torch alone); evaluate later with `finalize`")
    p.set_defaults(fn=cmd_train)
    p = sub.add_parser("train-all", help="train every trained model and seed, and build tiny-gpt2")
    p.add_argument("--out", type=Path, default=CHECKPOINT_ROOT)
    p.add_argument("--jobs", type=int, default=2, help="parallel training processes (one thread each)")
    p.add_argument("--weights-only", action="store_true", help="train only (torch alone; skips tiny-gpt2); then `finalize`")
    p.set_defaults(fn=cmd_train_all)
    p = sub.add_parser("finalize", help="evaluate --weights-only folders and write the manifest")
    p.add_argument("--out", type=Path, default=CHECKPOINT_ROOT)
    p.set_defaults(fn=cmd_finalize)
    p = sub.add_parser("build", help="build a Hugging Face-format model (tiny-gpt2)")
    p.add_argument("name", choices=BUILDABLE)
    p.add_argument("--out", type=Path, default=CHECKPOINT_ROOT)
    p.set_defaults(fn=cmd_build)
    p = sub.add_parser("verify", help="recompute every checkpoint's hashes and metrics against the manifest")
    p.add_argument("--out", type=Path, default=CHECKPOINT_ROOT)
    p.set_defaults(fn=cmd_verify)
    args = parser.parse_args(argv)
    return int(args.fn(args))


if __name__ == "__main__":
    sys.exit(main())
