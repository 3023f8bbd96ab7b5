"""``python -m mi_assert.sae train NAME|all [--steps N]`` and ``python -m mi_assert.sae list``."""

from __future__ import annotations

import argparse
import json
import sys

import torch


def main(argv: list[str] | None = None) -> int:
    from mi_assert.sae import zoo

    parser = argparse.ArgumentParser(prog="python -m mi_assert.sae")
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="train zoo SAEs with SAELens's SAETrainer (CPU)")
    train.add_argument("names", nargs="+", help=f"zoo SAE names or 'all' ({', '.join(zoo.available())})")
    train.add_argument("--steps", type=int, default=None, help="override the recipe's step count")
    train.add_argument("--threads", type=int, default=1,
                       help="torch CPU threads (default 1: the matmuls are small and one thread "
                       "is fastest on a shared 2-core machine)")
    sub.add_parser("list", help="zoo SAEs and their manifest metrics")
    ev = sub.add_parser("evaluate", help="recompute a trained zoo SAE's manifest metrics")
    ev.add_argument("names", nargs="+")
    cal = sub.add_parser("calibrate", help="pass rates of the SAE claims at default thresholds")
    cal.add_argument("--seeds", type=int, default=50)
    cal.add_argument("--samples", type=int, default=256)
    args = parser.parse_args(argv)
    if args.command == "list":
        man = zoo.manifest()
        for name in zoo.available():
            print(name, json.dumps(man.get(name, {}).get("metrics", "not trained")))
        return 0
    if args.command == "evaluate":
        for name in args.names:
            print(name, json.dumps(zoo.refresh_metrics(name)))
        return 0
    if args.command == "calibrate":
        from mi_assert.sae.calibration import format_table, run_calibration

        torch.set_num_threads(1)
        print(format_table(run_calibration(args.seeds, args.samples)))
        return 0
    torch.set_num_threads(args.threads)
    names = zoo.available() if args.names == ["all"] else args.names
    for name in names:
        zoo.train(name, steps=args.steps)
    return 0


if __name__ == "__main__":
    sys.exit(main())
