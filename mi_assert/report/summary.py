"""The terminal summary of the claims recorded in a session, grouped like the HTML report.

Suite file → model and test, one line per claim with the deciding member of a composite claim;
claims whose tests expected them to fail (``pytest.raises``, strict xfail) are folded into a
count per group. The plugin prints the run's totals as the very last line
(:func:`totals_line`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from mi_assert.report import layout
from mi_assert.report.readout import fmt, is_expected_failure, members, relation, totals, verdict


def _claim_cell(rec: Mapping[str, Any]) -> str:
    ev = rec["evidence"]
    claim = str(ev.get("claim"))
    if members(ev) and ev.get("deciding"):
        claim += f" [deciding: {ev['deciding']}]"
    if rec.get("checkpoint"):
        claim += f" @{rec['checkpoint'].get('label')}"
    return claim


def _cells(rec: Mapping[str, Any]) -> tuple[str, ...]:
    ev = rec["evidence"]
    return (verdict(ev), _claim_cell(rec),
            f"{fmt(ev.get('estimate'))} [{fmt(ev.get('low'))}, {fmt(ev.get('high'))}]",
            relation(ev), f"n={ev.get('n')} {ev.get('unit') or ''}".rstrip())


def summary_lines(records: Sequence[Mapping[str, Any]]) -> list[str]:
    """Grouped claim lines (verdict, claim, estimate [interval], the comparison that holds or
    the reason, n and its unit), then the run's one-line verdict; [] without records."""
    if not records:
        return []
    groups = layout.grouped(records)
    shown = [_cells(r) for g in groups for r in g.records if not is_expected_failure(r)]
    widths = [max((len(c[i]) for c in shown), default=0) for i in range(4)]
    lines: list[str] = []
    suite = None
    for group in groups:
        if group.suite != suite:
            suite = group.suite
            lines.append(suite)
        lines.append(f"  {group.model} :: {group.test}")
        expected = [r for r in group.records if is_expected_failure(r)]
        for rec in group.records:
            if rec in expected:
                continue
            cells = _cells(rec)
            lines.append("    " + "  ".join(c.ljust(widths[i]) for i, c in enumerate(cells[:4]))
                         + "  " + cells[4])
        if expected:
            lines.append(f"    (+{len(expected)} expected failure(s): FAIL as the test expected)")
    lines.append(totals(records)["verdict"])
    return lines


def totals_line(records: Sequence[Mapping[str, Any]]) -> str:
    """``12 claim(s): 10 passed, 1 failed unexpectedly, 1 expected failure(s)``."""
    t = totals(records)
    return (f"{t['claims']} claim(s): {t['passed']} passed, {t['unexpected_failures']} failed "
            f"unexpectedly, {t['expected_failures']} expected failure(s)")
