"""The report document: every record of a run, claim trajectories over checkpoints, metadata.

``build_report`` is pure (records in, dict out) and orders everything deterministically, so a
serial run and a ``pytest -n N`` run of the same tests give the same document once the
volatile keys (:data:`~mi_assert.report.schema.VOLATILE_KEYS`) are dropped.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from mi_assert.report.atomic import atomic_write_text
from mi_assert.report.schema import (
    REPORT_KIND,
    REPORT_SCHEMA_VERSION,
    dedupe_keys,
    sort_records,
)

JSON_NAME = "report.json"
HTML_NAME = "report.html"


def trajectories(records: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Each claim's estimate across the checkpoints of a sweep (one series per model series)."""
    groups: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for rec in records:
        ck = rec.get("checkpoint")
        if not ck:
            continue
        key = str(rec["key"]).split("#")[0]
        groups.setdefault((key, str(ck.get("series", ""))), []).append(rec)
    out = []
    for (key, series), recs in sorted(groups.items()):
        recs = sorted(recs, key=lambda r: (r["checkpoint"].get("order", 0), r["checkpoint"].get("label", "")))
        ev0 = recs[0]["evidence"]
        steps = [r["checkpoint"].get("step") for r in recs]
        use_steps = all(s is not None for s in steps)
        out.append({
            "key": key,
            "series": series,
            "claim": ev0.get("claim"),
            "metric": ev0.get("metric"),
            "threshold": ev0.get("threshold"),
            "alternative": ev0.get("alternative"),
            "x_kind": "step" if use_steps else "order",
            "points": [{
                "label": r["checkpoint"].get("label"),
                "spec": r["checkpoint"].get("spec"),
                "x": (r["checkpoint"].get("step") if use_steps else r["checkpoint"].get("order")),
                "estimate": r["evidence"].get("estimate"),
                "low": r["evidence"].get("low"),
                "high": r["evidence"].get("high"),
                "passed": r["evidence"].get("passed"),
            } for r in recs],
        })
    return out


def trajectory_figure(traj: Mapping[str, Any]) -> dict[str, Any]:
    """A trajectory as a ``line`` figure spec (x = step or order; band = interval)."""
    pts = traj["points"]
    return {
        "kind": "line",
        "data": {"x": [p["x"] for p in pts], "y": [p["estimate"] for p in pts],
                 "low": [p["low"] for p in pts], "high": [p["high"] for p in pts],
                 "threshold": traj.get("threshold"),
                 "xticklabels": None if traj["x_kind"] == "step" else [p["label"] for p in pts]},
        "xlabel": "training step" if traj["x_kind"] == "step" else "checkpoint",
        "ylabel": str(traj.get("metric") or "estimate"),
        "title": f"{traj.get('claim')} — {traj.get('series')}",
    }


def build_report(records: Iterable[dict[str, Any]], meta: Mapping[str, Any] | None = None,
                 comparison: Mapping[str, Any] | None = None, complete: bool = True) -> dict[str, Any]:
    recs = dedupe_keys(sort_records(records))
    n_pass = sum(1 for r in recs if r["evidence"].get("passed"))
    doc: dict[str, Any] = {
        "kind": REPORT_KIND,
        "schema_version": REPORT_SCHEMA_VERSION,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "complete": complete,
        "meta": dict(meta or {}),
        "totals": {"claims": len(recs), "passed": n_pass, "failed": len(recs) - n_pass},
        "records": recs,
        "trajectories": trajectories(recs),
    }
    if comparison is not None:
        doc["comparison"] = dict(comparison)
    return doc


def dumps(doc: Mapping[str, Any]) -> str:
    return json.dumps(doc, indent=1, sort_keys=True, allow_nan=False) + "\n"


def write_json(folder: str | Path, doc: Mapping[str, Any]) -> Path:
    return atomic_write_text(Path(folder) / JSON_NAME, dumps(doc))


def write_report(folder: str | Path, doc: Mapping[str, Any]) -> tuple[Path, Path]:
    """Write ``report.json`` and a self-contained ``report.html`` (both atomically)."""
    from mi_assert.report.html import render_html

    json_path = write_json(folder, doc)
    html_path = atomic_write_text(Path(folder) / HTML_NAME, render_html(doc))
    return json_path, html_path
