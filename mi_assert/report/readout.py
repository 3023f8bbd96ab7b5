"""How every report surface reads a recorded claim: the comparison that holds, the totals,
the members of composite claims, the order of checkpoints.

The terminal summary, ``report.json``, ``report.html``, junit properties and the baseline diff
all print through these functions, so they say the same thing, and what they say is true: the
relation between bound and threshold is the one that holds for the numbers (``>``, ``<=``
...), or the reason the verdict is not such a comparison (an undefined statistic, a Holm
step-down), never a fixed ``>`` with a question mark.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from mi_assert import comparison
from mi_assert.comparison import finite as _finite
from mi_assert.comparison import fmt

_DIGITS = re.compile(r"(\d+)")


def holds(ev: Mapping[str, Any]) -> str:
    """The relation between the record's bound and threshold that holds (``?``: not numbers)."""
    return comparison.holds(ev.get("bound"), ev.get("threshold"), ev.get("alternative"))


def relation(ev: Mapping[str, Any]) -> str:
    """``bound 0.812 > threshold 0.400``, or the reason when the verdict is not that comparison."""
    return comparison.relation(ev.get("bound"), ev.get("threshold"), ev.get("alternative"),
                               str(ev.get("reason") or ""))


def side(ev: Mapping[str, Any]) -> str:
    """``one-sided 95% lower bound`` (``upper`` for a "less" claim)."""
    return comparison.side(ev.get("alpha"), ev.get("alternative"))


def headline(ev: Mapping[str, Any]) -> str:
    """``metric = 0.900 [0.800, 0.950] (n=32 prompts); bound 0.812 > threshold 0.400``; for a
    composite claim the numbers are its deciding member's, and say so."""
    head = f"deciding member '{ev.get('deciding')}': " if ev.get("family") and ev.get("deciding") else ""
    unit = ev.get("unit") or "units"
    return (f"{head}{ev.get('metric')} = {fmt(ev.get('estimate'))} [{fmt(ev.get('low'))}, "
            f"{fmt(ev.get('high'))}] (n={ev.get('n')} {unit}); {relation(ev)}")


def summary(ev: Mapping[str, Any]) -> str:
    """The evidence's own one-line verdict text (rebuilt the same way for records without one)."""
    text = ev.get("summary")
    if text:
        return str(text)
    return f"{ev.get('claim')}: {headline(ev)}: {verdict(ev)}"


def verdict(ev: Mapping[str, Any]) -> str:
    return "PASS" if ev.get("passed") else "FAIL"


def members(ev: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [m for m in (ev.get("family") or []) if isinstance(m, Mapping)]


def member_units(ev: Mapping[str, Any], key: str) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """``(key, evidence)`` for every claim that has its own numbers: a single claim itself, or
    each member of a composite (``key::member claim``, recursively; a repeated member claim
    within one composite gets ``#k``)."""
    family = members(ev)
    if not family:
        yield key, ev
        return
    seen: dict[str, int] = {}
    for member in family:
        name = str(member.get("claim", ""))
        seen[name] = seen.get(name, 0) + 1
        suffix = f"#{seen[name]}" if seen[name] > 1 else ""
        yield from member_units(member, f"{key}::{name}{suffix}")


def is_expected_failure(rec: Mapping[str, Any]) -> bool:
    """A FAIL verdict whose test passed (``pytest.raises``) or xfailed: the test expected it."""
    return (not rec["evidence"].get("passed")
            and rec.get("test_outcome") in ("passed", "xfailed"))


def totals(records: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Counts from the records themselves, and the one-line verdict of the run."""
    recs = list(records)
    passed = sum(1 for r in recs if r["evidence"].get("passed"))
    expected = sum(1 for r in recs if is_expected_failure(r))
    failed = len(recs) - passed
    out: dict[str, Any] = {"claims": len(recs), "passed": passed, "failed": failed,
           "expected_failures": expected, "unexpected_failures": failed - expected}
    out["verdict"] = verdict_line(out)
    return out


def verdict_line(t: Mapping[str, Any]) -> str:
    claims, failed = int(t.get("claims", 0)), int(t.get("failed", 0))
    expected = int(t.get("expected_failures", 0))
    if claims == 0:
        return "no claims recorded"
    if failed == 0:
        return f"all {claims} claim(s) passed"
    text = f"{failed} of {claims} claim(s) FAILED"
    if expected:
        text += (f" ({expected} expected by their tests, {failed - expected} unexpected)"
                 if expected < failed else " (all expected by their tests)")
    return text


def natural_key(label: Any) -> tuple[Any, ...]:
    """``step200`` before ``step1000``: digit runs compare as numbers."""
    parts = _DIGITS.split("" if label is None else str(label))
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in parts if p != "")


def checkpoint_sort_key(step: Any, order: Any, label: Any) -> tuple[Any, ...]:
    """Checkpoints by training step when known, then by sweep order, then by label (natural)."""
    return (0 if _finite(step) else 1, float(step) if _finite(step) else 0.0,
            int(order) if _finite(order) else 0, natural_key(label))
