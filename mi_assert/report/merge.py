"""Merge the ``report.json`` files of a split run (``--mi-shard I/N`` jobs, or jobs that ran
disjoint parts of a suite) into one report, the one an unsharded run would have written.

The records of every input are put together and the document is rebuilt by
:func:`~mi_assert.report.json_report.build_report` (sorting, keys, totals, verdict line,
trajectories), so it equals an unsharded run's report apart from the volatile keys
(:data:`~mi_assert.report.schema.VOLATILE_KEYS`) and ``meta.merged``, which says what was
merged. Comparisons with a baseline (``--mi-compare`` in every shard) are merged row by row: a
claim another shard ran is no longer ``missing``.

Refused, with the file named: a missing or unreadable ``report.json``, another kind of file or
schema version, inputs from different mi-assert versions, a mix of shard and non-shard
reports, shards of different runs (shard count or collected tests differ), the same shard or
test node id in two inputs, comparisons with different baselines or tolerances. An input that
is incomplete (interrupted, still running, or a shard left out) is refused unless
``allow_incomplete``; the merged report then has ``complete: false``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mi_assert.errors import MiAssertInputError
from mi_assert.report.compare import STATUSES, row_sort_key
from mi_assert.report.json_report import JSON_NAME, build_report, write_report
from mi_assert.report.schema import REPORT_KIND, check_document, strip_volatile
from mi_assert.shard import META_KEY, collection_digest

OUTSIDE_A_TEST = "<outside a test>"
_INCOMPLETE_HINT = ("rerun what is missing or stopped, or pass --allow-incomplete to merge "
                    "what there is (the merged report is then marked complete: false)")


@dataclass
class Input:
    """One report to merge: where it came from and its document."""

    source: Path
    doc: dict[str, Any]

    @property
    def shard(self) -> Mapping[str, Any] | None:
        plan = self.doc.get("meta", {}).get(META_KEY)
        return plan if isinstance(plan, Mapping) else None

    @property
    def label(self) -> str:
        plan = self.shard
        return f"{self.source} (shard {plan['index']}/{plan['count']})" if plan else str(self.source)

    @property
    def where(self) -> str:
        plan = self.shard
        return f"shard {plan['index']}/{plan['count']}" if plan else str(self.source)

    def nodeids(self) -> set[str]:
        """The tests this input ran: its shard's list, and every test its records name."""
        ids = {str(r.get("nodeid")) for r in self.doc["records"]}
        ids.discard(OUTSIDE_A_TEST)
        plan = self.shard
        if plan and isinstance(plan.get("tests"), list):
            ids.update(str(t) for t in plan["tests"])
        return ids


def load_input(path: str | Path) -> Input:
    """A report folder (or its ``report.json``), checked to be a readable mi-assert report."""
    given = Path(path)
    source = given / JSON_NAME if given.is_dir() else given
    if not given.exists():
        raise MiAssertInputError(f"{given}: no such report folder; give folders written by "
                                 "--mi-report DIR")
    if not source.is_file():
        raise MiAssertInputError(f"{given}: has no {JSON_NAME} (did that job run with "
                                 "--mi-report, and did it finish uploading?)")
    try:
        text = source.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise MiAssertInputError(f"{source}: cannot be read ({type(exc).__name__}: {exc})") from exc
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise MiAssertInputError(
            f"{source} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}); "
            "download it again, or rerun the job that wrote it") from exc
    return Input(source, check_document(doc, REPORT_KIND, str(source)))


def merge_reports(inputs: Sequence[Input], allow_incomplete: bool = False) -> dict[str, Any]:
    """The merged report document (see the module docstring for what is refused)."""
    if not inputs:
        raise MiAssertInputError("nothing to merge: give at least one report folder")
    _check_distinct_sources(inputs)
    _check_versions(inputs)
    missing_shards = _check_shards(inputs)
    incomplete = [f"{i.label}: {why}" for i in inputs if (why := _incompleteness(i.doc))]
    if missing_shards:
        incomplete.append(f"shard(s) {', '.join(missing_shards)} not given")
    if incomplete and not allow_incomplete:
        raise MiAssertInputError("incomplete input: " + "; ".join(incomplete) + "; "
                                 + _INCOMPLETE_HINT)
    _check_overlap(inputs)
    comparison = _merge_comparisons(inputs)
    interrupted = [f"{i.doc['interrupted']} in {i.where}" for i in inputs if i.doc.get("interrupted")]
    return build_report(
        _records(inputs), _meta(inputs, missing_shards), comparison,
        complete=not incomplete, interrupted="; ".join(interrupted) or None,
        crashed=[c for i in inputs for c in i.doc.get("crashed") or []])


def merge_dirs(out_dir: str | Path, in_dirs: Iterable[str | Path],
               allow_incomplete: bool = False) -> tuple[Path, Path, dict[str, Any]]:
    """Merge the reports in ``in_dirs`` and write ``out_dir/report.json`` + ``report.html``
    (atomically; the JSON first)."""
    from mi_assert.report.atomic import ensure_writable_dir

    inputs = [load_input(p) for p in in_dirs]
    out = Path(out_dir)
    for i in inputs:
        if out.exists() and i.source.parent.resolve() == out.resolve():
            raise MiAssertInputError(f"{out} is also an input; write the merged report to "
                                     "another folder")
    doc = merge_reports(inputs, allow_incomplete)
    json_path, html_path = write_report(ensure_writable_dir(out), doc)
    return json_path, html_path, doc


# ----- checks ------------------------------------------------------------------------------

def _check_distinct_sources(inputs: Sequence[Input]) -> None:
    seen: set[Path] = set()
    for i in inputs:
        resolved = i.source.resolve()
        if resolved in seen:
            raise MiAssertInputError(f"{i.source} is given twice")
        seen.add(resolved)


def _check_versions(inputs: Sequence[Input]) -> None:
    if len({i.doc.get("schema_version") for i in inputs}) > 1:
        listing = ", ".join(f"{i.source}: {i.doc.get('schema_version')!r}" for i in inputs)
        raise MiAssertInputError(f"the reports have different schema versions ({listing})")
    versions = {i.doc.get("meta", {}).get("mi_assert") for i in inputs}
    if len(versions) > 1:
        listing = ", ".join(f"{i.source}: {i.doc.get('meta', {}).get('mi_assert')}" for i in inputs)
        raise MiAssertInputError(f"the reports come from different mi-assert versions ({listing}); "
                                 "run every shard with the same mi-assert")


def _check_shards(inputs: Sequence[Input]) -> list[str]:
    """Shards of one run, each once; returns the shards not given (``"3/3"``...)."""
    sharded = [i for i in inputs if i.shard]
    if not sharded:
        return []
    if len(sharded) != len(inputs):
        plain = next(i for i in inputs if not i.shard)
        raise MiAssertInputError(
            f"{plain.source} is not a --mi-shard report but {sharded[0].label} is; merge the "
            "shards of one run, or reports of runs without --mi-shard")
    plans = [(i, i.shard or {}) for i in inputs]
    for key, what in (("count", "shard counts"), ("collection", "collected tests")):
        values = {p.get(key) for _, p in plans}
        if len(values) > 1:
            listing = ", ".join(f"{i.label}: {p.get(key)}" for i, p in plans)
            hint = (" (a different commit, test paths, -k/-m or --mi-checkpoints?)"
                    if key == "collection" else "")
            raise MiAssertInputError(f"the shards come from different runs: their {what} "
                                     f"differ{hint}: {listing}")
    by_index: dict[int, Input] = {}
    for i, plan in plans:
        index = int(plan["index"])
        if index in by_index:
            raise MiAssertInputError(f"shard {index}/{plan['count']} is given twice: "
                                     f"{by_index[index].source} and {i.source}")
        by_index[index] = i
    count = int(plans[0][1]["count"])
    missing = [f"{k}/{count}" for k in range(1, count + 1) if k not in by_index]
    if not missing:
        _check_union(plans)
    return missing


def _check_union(plans: Sequence[tuple[Input, Mapping[str, Any]]]) -> None:
    """All shards given: their tests together must be exactly the collection."""
    if not all(isinstance(p.get("tests"), list) for _, p in plans):
        return
    union = [str(t) for _, p in plans for t in p["tests"]]
    if collection_digest(union) != plans[0][1].get("collection"):
        raise MiAssertInputError(
            "the shards' tests do not add up to the collection they were split from: "
            + ", ".join(f"{i.label}: {p.get('selected')} test(s)" for i, p in plans))


def _incompleteness(doc: Mapping[str, Any]) -> str | None:
    if doc.get("interrupted"):
        return f"stopped by {doc['interrupted']}"
    if doc.get("complete") is not True:
        return "complete: false (the run was killed or is still running)"
    return None


def _check_overlap(inputs: Sequence[Input]) -> None:
    owner: dict[str, Input] = {}
    clashes: list[str] = []
    for i in inputs:
        for nodeid in sorted(i.nodeids()):
            if nodeid in owner:
                clashes.append(f"{nodeid} ({owner[nodeid].source} and {i.source})")
            else:
                owner[nodeid] = i
    if clashes:
        more = f", ... (+{len(clashes) - 5} more)" if len(clashes) > 5 else ""
        raise MiAssertInputError(f"the reports overlap: {len(clashes)} test(s) in more than one "
                                 f"input: {', '.join(clashes[:5])}{more}; merge disjoint runs only")


# ----- the merged document -----------------------------------------------------------------

def _records(inputs: Sequence[Input]) -> list[dict[str, Any]]:
    """Every input's records; claims made outside any test (session fixtures) that every
    shard made alike are kept once."""
    out: list[dict[str, Any]] = []
    outside: list[Any] = []
    for i in inputs:
        for rec in i.doc["records"]:
            if rec.get("nodeid") == OUTSIDE_A_TEST:
                plain = strip_volatile(rec)
                if plain in outside:
                    continue
                outside.append(plain)
            out.append(dict(rec))
    return out


def _meta(inputs: Sequence[Input], missing_shards: list[str]) -> dict[str, Any]:
    metas = [dict(i.doc.get("meta") or {}) for i in inputs]
    out: dict[str, Any] = {}
    for key in sorted({k for m in metas for k in m} - {META_KEY, "duration_s", "argv", "workers"}):
        values = [m[key] for m in metas if key in m]
        if all(isinstance(v, list) for v in values):
            out[key] = sorted((x for v in values for x in v), key=_list_order)
        elif all(v == values[0] for v in values):
            out[key] = values[0]
    durations = [float(d) for m in metas if isinstance(d := m.get("duration_s"), (int, float))]
    out["duration_s"] = max(durations) if durations else None
    shards = [i.shard for i in inputs if i.shard]
    out["merged"] = {
        "inputs": [{"path": str(i.source), "shard": (f"{i.shard['index']}/{i.shard['count']}"
                                                     if i.shard else None),
                    "created": i.doc.get("created"), "complete": i.doc.get("complete"),
                    "claims": len(i.doc["records"])} for i in inputs],
        "unit": shards[0].get("unit") if shards else None,
        "missing_shards": missing_shards,
    }
    return out


def _list_order(item: Any) -> tuple[Any, ...]:
    """Entries of list-valued meta (missing weights: skipped before failed, then node id)."""
    if isinstance(item, Mapping):
        return (item.get("outcome") != "skipped", str(item.get("nodeid")),
                json.dumps(item, sort_keys=True, default=str))
    return (False, "", json.dumps(item, sort_keys=True, default=str))


def _merge_comparisons(inputs: Sequence[Input]) -> dict[str, Any] | None:
    """One comparison from every shard's: a row another shard ran replaces its ``missing``."""
    comparisons = [(i, i.doc.get("comparison")) for i in inputs]
    present = [(i, c) for i, c in comparisons if isinstance(c, Mapping)]
    if not present:
        return None
    if len(present) != len(inputs):
        without = next(i for i, c in comparisons if not isinstance(c, Mapping))
        raise MiAssertInputError(f"{without.label} has no comparison with a baseline but "
                                 f"{present[0][0].label} has; run every shard with the same "
                                 "--mi-compare, or none")
    for field in ("baseline", "tolerances"):
        if len({json.dumps(c.get(field), sort_keys=True) for _, c in present}) > 1:
            listing = ", ".join(f"{i.label}: {c.get(field)!r}" for i, c in present)
            raise MiAssertInputError(f"the shards were compared with different {field}: {listing}")
    rows: dict[tuple[str, str, str], dict[str, Any]] = {}
    for _, c in present:
        for row in c.get("rows") or []:
            slot = (str(row.get("key")), str(row.get("series") or ""), str(row.get("checkpoint") or ""))
            if slot not in rows or rows[slot].get("status") == "missing":
                rows[slot] = dict(row)
    merged = sorted(rows.values(), key=row_sort_key)
    _set_where(merged)
    first = present[0][1]
    return {"baseline": first.get("baseline"), "tolerances": first.get("tolerances"),
            "rows": merged, "counts": {s: sum(1 for r in merged if r.get("status") == s)
                                       for s in STATUSES},
            "warnings": sorted({w for _, c in present for w in c.get("warnings") or []})}


def _set_where(rows: Sequence[dict[str, Any]]) -> None:
    """The checkpoint column as :func:`~mi_assert.report.compare.compare` writes it."""
    series: dict[str, set[str]] = {}
    for row in rows:
        series.setdefault(str(row.get("key")), set()).add(str(row.get("series") or ""))
    for row in rows:
        several = len(series[str(row.get("key"))]) > 1 and row.get("series")
        row["where"] = f"{row['series']}:{row['checkpoint']}" if several else row.get("checkpoint")
