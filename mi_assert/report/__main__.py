"""``python -m mi_assert.report merge OUT_DIR IN_DIR...``: one report from the reports of a
split run (see :mod:`mi_assert.report.merge`).

Exit status: 0 when the merged report was written, 2 for bad input (the message names the
file and what is wrong), 1 when it could not be written.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m mi_assert.report",
                                     description="mi-assert report tools")
    commands = parser.add_subparsers(dest="command", required=True)
    merge = commands.add_parser(
        "merge", help="merge the report.json files of --mi-shard jobs into one report",
        description="Write OUT_DIR/report.json and OUT_DIR/report.html from the reports in "
        "IN_DIR... (folders written by --mi-report, or their report.json files).")
    merge.add_argument("out_dir", metavar="OUT_DIR")
    merge.add_argument("in_dirs", metavar="IN_DIR", nargs="+")
    merge.add_argument("--allow-incomplete", action="store_true",
                       help="merge interrupted reports or a run with shards missing; the merged "
                       "report says complete: false")
    return parser


def _merge(args: argparse.Namespace) -> int:
    from mi_assert.report.merge import merge_dirs

    try:
        json_path, html_path, doc = merge_dirs(args.out_dir, args.in_dirs, args.allow_incomplete)
    except ValueError as exc:  # MiAssertInputError
        print(f"mi-assert merge: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"mi-assert merge: error: could not write the merged report in {args.out_dir} "
              f"({type(exc).__name__}: {exc})", file=sys.stderr)
        return 1
    merged = doc["meta"]["merged"]
    shards = [i["shard"] for i in merged["inputs"] if i["shard"]]
    what = f"shard(s) {', '.join(shards)}" if shards else f"{len(merged['inputs'])} report(s)"
    print(f"mi-assert merge: {what}: {doc['totals']['verdict']}")
    if not doc["complete"]:
        print("mi-assert merge: WARNING: the merged report is incomplete (complete: false)"
              + (f"; missing shard(s) {', '.join(merged['missing_shards'])}"
                 if merged["missing_shards"] else ""))
    print(f"mi-assert merge: report written: {html_path} (+ {json_path.name})")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "merge":
        return _merge(args)
    return 2  # pragma: no cover - argparse rejects unknown commands


if __name__ == "__main__":
    sys.exit(main())
