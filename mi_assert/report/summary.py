"""The terminal summary table of claims recorded in a session."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def summary_lines(records: Sequence[Any]) -> list[str]:
    """One line per recorded claim: estimate [interval] vs threshold, n and verdict."""
    rows = []
    for rec in records:
        ev = rec.evidence
        cmp = ">" if ev.alternative == "greater" else "<"
        rows.append((
            ev.verdict,
            ev.claim,
            f"{ev.estimate:.3f} [{ev.low:.3f}, {ev.high:.3f}]",
            f"bound {ev.bound:.3f} {cmp} {ev.threshold:.3f}",
            f"n={ev.n}",
            rec.context.get("nodeid", ""),
        ))
    if not rows:
        return []
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    return ["  ".join(r[i].ljust(widths[i]) for i in range(5)) + ("  " + r[5] if r[5] else "")
            for r in rows]
