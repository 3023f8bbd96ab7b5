"""The terminal summary table of claims recorded in a session."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def summary_lines(records: Sequence[Mapping[str, Any]]) -> list[str]:
    """One line per record dict: verdict, claim, estimate [interval], bound vs threshold, n, test."""
    rows = []
    for rec in records:
        ev = rec["evidence"]
        cmp = ">" if ev.get("alternative") == "greater" else "<"
        claim = str(ev.get("claim"))
        if rec.get("checkpoint"):
            claim += f" @{rec['checkpoint'].get('label')}"
        rows.append((
            str(ev.get("verdict")),
            claim,
            f"{_f(ev.get('estimate'))} [{_f(ev.get('low'))}, {_f(ev.get('high'))}]",
            f"bound {_f(ev.get('bound'))} {cmp} {_f(ev.get('threshold'))}",
            f"n={ev.get('n')}",
            str(rec.get("nodeid") or ""),
        ))
    if not rows:
        return []
    header = ("verdict", "claim", "estimate [interval]", "vs threshold", "n", "test")
    rows.insert(0, header)
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    return ["  ".join(r[i].ljust(widths[i]) for i in range(5)) + "  " + r[5] for r in rows]


def _f(value: Any) -> str:
    return "nan" if value is None else f"{value:.3f}"
