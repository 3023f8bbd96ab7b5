#!/usr/bin/env python
"""Diff two mi-assert report.json files, number by number.

    python scripts/diff_reports.py OLD.json NEW.json [--tol 1e-9]

Records are matched by ``key`` (test id without the checkpoint parameter, claim) and
checkpoint (series, label); per-seed rows by ``(seed, model_seed, label)``; members of a
composite claim by their claim text (recursively). Prints every row whose estimate, low, high,
bound or verdict changed by more than ``--tol``, every claim whose verdict changed, and the
claims found in only one report. Reads report schema 1 (before the claims engine rewrite) and
schema 2.

Exit status: 1 when a single-row claim's numbers changed or any verdict changed (claim,
member or row); 0 otherwise (a claim with several rows may move its numbers: its rows are
printed, and only their verdicts count).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

NUMBERS = ("estimate", "low", "high", "bound")
READS = (1, 2)


class ReportError(Exception):
    pass


def load(path: str | Path) -> dict[str, Any]:
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ReportError(f"{path}: cannot be read ({exc})") from exc
    except json.JSONDecodeError as exc:
        raise ReportError(f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: "
                          f"{exc.msg})") from exc
    if not isinstance(doc, dict) or doc.get("kind") != "mi-assert-report":
        kind = doc.get("kind") if isinstance(doc, dict) else type(doc).__name__
        raise ReportError(f"{path}: not an mi-assert report.json (kind {kind!r})")
    if doc.get("schema_version") not in READS:
        raise ReportError(f"{path}: report schema_version {doc.get('schema_version')!r}; this "
                          f"script reads {', '.join(map(str, READS))}")
    if not isinstance(doc.get("records"), list):
        raise ReportError(f"{path}: 'records' must be a list")
    return doc


def _slot(rec: Mapping[str, Any]) -> str:
    ck = rec.get("checkpoint") or {}
    where = ""
    if isinstance(ck, Mapping) and ck.get("label") is not None:
        series = ck.get("series")
        where = f" @{series + ':' if series else ''}{ck.get('label')}"
    return f"{rec.get('key')}{where}"


def index_records(doc: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    out: dict[str, Mapping[str, Any]] = {}
    for rec in doc["records"]:
        slot, k = _slot(rec), 1
        while slot in out:
            k += 1
            slot = f"{_slot(rec)} (#{k})"
        out[slot] = rec["evidence"]
    return out


def _rows(ev: Mapping[str, Any]) -> dict[tuple[Any, Any, str], Mapping[str, Any]]:
    out: dict[tuple[Any, Any, str], Mapping[str, Any]] = {}
    for row in ev.get("per_seed") or []:
        out[(row.get("seed"), row.get("model_seed"), str(row.get("label") or ""))] = row
    return out


def _members(ev: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    out: dict[str, Mapping[str, Any]] = {}
    for member in ev.get("family") or []:
        name, k = str(member.get("claim")), 1
        while name in out:
            k += 1
            name = f"{member.get('claim')} (#{k})"
        out[name] = member
    return out


def _verdict(d: Mapping[str, Any]) -> str:
    if "verdict" in d and d["verdict"] in ("PASS", "FAIL"):
        return str(d["verdict"])
    return "PASS" if d.get("passed") else "FAIL"


def _num(x: Any) -> float | None:
    if x is None:
        return None
    try:
        value = float(x)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _changed_numbers(a: Mapping[str, Any], b: Mapping[str, Any], tol: float) -> list[str]:
    out = []
    for name in NUMBERS:
        x, y = _num(a.get(name)), _num(b.get(name))
        if (x is None) != (y is None) or (x is not None and y is not None and abs(x - y) > tol):
            out.append(name)
    return out


def _fmt(x: Any) -> str:
    v = _num(x)
    return "nan" if v is None else f"{v:.6g}"


def _describe(d: Mapping[str, Any]) -> str:
    return (f"estimate {_fmt(d.get('estimate'))} [{_fmt(d.get('low'))}, {_fmt(d.get('high'))}] "
            f"bound {_fmt(d.get('bound'))} {_verdict(d)}")


def diff_evidence(name: str, old: Mapping[str, Any], new: Mapping[str, Any],
                  tol: float) -> Iterator[tuple[str, bool]]:
    """``(line, counts)`` for each difference; ``counts``: it makes the exit status 1."""
    family_old, family_new = _members(old), _members(new)
    single = not family_old and not family_new and len(_rows(old)) <= 1 and len(_rows(new)) <= 1
    changed = _changed_numbers(old, new, tol)
    verdict_changed = _verdict(old) != _verdict(new)
    if verdict_changed:
        yield (f"VERDICT {name}: {_verdict(old)} -> {_verdict(new)} "
               f"(old {_describe(old)}; new {_describe(new)})"), True
    elif changed:
        kind = "single-row claim" if single else "headline"
        yield (f"CHANGED {name} ({kind}: {', '.join(changed)}): old {_describe(old)}; "
               f"new {_describe(new)}"), single
    rows_old, rows_new = _rows(old), _rows(new)
    for key in sorted(set(rows_old) | set(rows_new), key=repr):
        seed, model_seed, label = key
        row_name = f"{name} | seed {seed}" + (
            f", model seed {model_seed}" if model_seed is not None else "") + (
            f", {label}" if label else "")
        a, b = rows_old.get(key), rows_new.get(key)
        if a is None or b is None:
            yield f"ROW ONLY IN {'NEW' if a is None else 'OLD'} {row_name}", False
            continue
        row_changed = _changed_numbers(a, b, tol)
        row_verdict = _verdict(a) != _verdict(b)
        if row_changed or row_verdict:
            yield (f"  row {row_name} ({', '.join(row_changed + (['verdict'] if row_verdict else []))}): "
                   f"old {_describe(a)}; new {_describe(b)}"), row_verdict or (single and bool(row_changed))
    for member in sorted(set(family_old) | set(family_new)):
        a, b = family_old.get(member), family_new.get(member)
        member_name = f"{name} :: member {member}"
        if a is None or b is None:
            yield f"MEMBER ONLY IN {'NEW' if a is None else 'OLD'} {member_name}", False
            continue
        yield from diff_evidence(member_name, a, b, tol)


def diff(old_doc: Mapping[str, Any], new_doc: Mapping[str, Any],
         tol: float = 1e-9) -> tuple[list[str], bool]:
    old, new = index_records(old_doc), index_records(new_doc)
    lines: list[str] = []
    failing = False
    for slot in sorted(set(old) | set(new)):
        if slot not in new:
            lines.append(f"ONLY IN OLD {slot}")
            continue
        if slot not in old:
            lines.append(f"ONLY IN NEW {slot}")
            continue
        for line, counts in diff_evidence(slot, old[slot], new[slot], tol):
            lines.append(line)
            failing = failing or counts
    return lines, failing


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("old", help="the older report.json")
    parser.add_argument("new", help="the newer report.json")
    parser.add_argument("--tol", type=float, default=1e-9,
                        help="absolute tolerance on estimate/low/high/bound (default 1e-9)")
    args = parser.parse_args(argv)
    if not args.tol >= 0:
        parser.error("--tol must be a number >= 0")
    try:
        old_doc, new_doc = load(args.old), load(args.new)
    except ReportError as exc:
        print(f"diff_reports: {exc}", file=sys.stderr)
        return 2
    lines, failing = diff(old_doc, new_doc, args.tol)
    for line in lines:
        print(line)
    n_old, n_new = len(old_doc["records"]), len(new_doc["records"])
    print(f"{n_old} record(s) in {args.old} (schema {old_doc['schema_version']}), {n_new} in "
          f"{args.new} (schema {new_doc['schema_version']}): "
          + ("numbers or verdicts changed" if failing else
             ("no verdict changed; no single-row claim's numbers changed" if lines else "no difference")))
    return 1 if failing else 0


if __name__ == "__main__":
    sys.exit(main())
