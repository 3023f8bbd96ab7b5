"""The report document: every record of a run, claim trajectories over checkpoints, metadata.

``build_report`` is pure (records in, dict out) and orders everything deterministically, so a
serial run and a ``pytest -n N`` run of the same tests give the same document once the
volatile keys (:data:`~mi_assert.report.schema.VOLATILE_KEYS`) are dropped.
"""

from __future__ import annotations

import html
import json
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from mi_assert.report.atomic import atomic_write_text
from mi_assert.report.readout import totals
from mi_assert.report.schema import (
    REPORT_KIND,
    REPORT_SCHEMA_VERSION,
    dedupe_keys,
    sort_records,
)
from mi_assert.report.trajectory import trajectories

JSON_NAME = "report.json"
HTML_NAME = "report.html"


def build_report(records: Iterable[dict[str, Any]], meta: Mapping[str, Any] | None = None,
                 comparison: Mapping[str, Any] | None = None, complete: bool = True,
                 interrupted: str | None = None,
                 crashed: Iterable[Mapping[str, Any]] = ()) -> dict[str, Any]:
    """``interrupted``: what stopped the run (``SIGTERM``, ``SIGINT``...), None if nothing did;
    ``crashed``: tests whose process died while running them (:func:`~mi_assert.report.collect.
    crash_entry`), which have no records of their own."""
    recs = dedupe_keys(sort_records(records))
    doc: dict[str, Any] = {
        "kind": REPORT_KIND,
        "schema_version": REPORT_SCHEMA_VERSION,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "complete": complete,
        "interrupted": interrupted,
        "crashed": sorted((dict(c) for c in crashed), key=lambda c: str(c.get("nodeid"))),
        "meta": dict(meta or {}),
        "totals": totals(recs),
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

    json_path = write_json(folder, doc)  # first: the JSON alone is the whole evidence
    html_path = atomic_write_text(Path(folder) / HTML_NAME, _with_stop_notice(render_html(doc), doc))
    return json_path, html_path


def stop_notice(doc: Mapping[str, Any]) -> list[str]:
    """Sentences saying what cut the run short: the signal that stopped it, crashed tests."""
    lines = []
    if doc.get("interrupted"):
        lines.append(f"The run was stopped by {doc['interrupted']}: this report holds the claims "
                     "recorded until then; tests that had not run have none.")
    for crash in doc.get("crashed") or []:
        lines.append(f"CRASHED: {crash.get('nodeid')} ({crash.get('message')}); the claims it "
                     "had recorded died with its process.")
    return lines


def _with_stop_notice(page: str, doc: Mapping[str, Any]) -> str:
    lines = stop_notice(doc)
    if not lines:
        return page
    notice = "".join(f'<p class="warn">{html.escape(line)}</p>' for line in lines)
    # right under the title, where a reader looks before trusting the totals
    head, title, rest = page.partition("</h1>")
    return head + title + "\n" + notice + rest if title else page.replace("</body>", notice + "</body>")
