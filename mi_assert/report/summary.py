"""The terminal summary table of claims recorded in a session."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from mi_assert.report.readout import fmt, is_expected_failure, members, relation, totals, verdict


def _verdict_cell(rec: Mapping[str, Any]) -> str:
    text = verdict(rec["evidence"])
    if is_expected_failure(rec):
        text += " (xfail)" if rec.get("test_outcome") == "xfailed" else " (expected)"
    return text


def _claim_cell(rec: Mapping[str, Any]) -> str:
    ev = rec["evidence"]
    claim = str(ev.get("claim"))
    if members(ev) and ev.get("deciding"):
        claim += f" [deciding: {ev['deciding']}]"
    if rec.get("checkpoint"):
        claim += f" @{rec['checkpoint'].get('label')}"
    return claim


def summary_lines(records: Sequence[Mapping[str, Any]]) -> list[str]:
    """One line per record: verdict, claim, estimate [interval], the comparison that holds
    (or the reason), n and its unit, test; then the run's one-line verdict."""
    rows = []
    for rec in records:
        ev = rec["evidence"]
        rows.append((
            _verdict_cell(rec),
            _claim_cell(rec),
            f"{fmt(ev.get('estimate'))} [{fmt(ev.get('low'))}, {fmt(ev.get('high'))}]",
            relation(ev),
            f"n={ev.get('n')} {ev.get('unit') or ''}".rstrip(),
            str(rec.get("nodeid") or ""),
        ))
    if not rows:
        return []
    header = ("verdict", "claim", "estimate [interval]", "bound vs threshold", "n", "test")
    rows.insert(0, header)
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    lines = ["  ".join(r[i].ljust(widths[i]) for i in range(5)) + "  " + r[5] for r in rows]
    lines.append(totals(records)["verdict"])
    return lines
