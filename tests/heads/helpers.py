"""Checks every head test applies to the Evidence it gets back (returned or raised)."""

from __future__ import annotations

import math

from mi_assert.stats.bootstrap import clears
from mi_assert.stats.evidence import Evidence


def check_invariants(ev: Evidence) -> Evidence:
    """``passed == clears(bound, threshold, alternative)`` unless ``reason``, and
    ``low <= estimate <= high``, for the evidence, each member and each row."""
    if not ev.reason:
        assert ev.passed == clears(ev.bound, ev.threshold, ev.alternative), ev.summary_line()
        assert ev.low <= ev.estimate <= ev.high, ev.summary_line()
    else:
        assert not ev.passed
    for row in ev.per_seed:
        threshold = ev.threshold if row.threshold is None else row.threshold
        assert row.passed == clears(row.bound, threshold, row.alternative), (ev.claim, row)
        if math.isfinite(row.estimate):
            assert row.low <= row.estimate <= row.high, (ev.claim, row)
    if ev.envelope is not None:
        assert ev.envelope[0] <= ev.low and ev.high <= ev.envelope[1]
    for member in ev.family:
        check_invariants(member)
    return ev
