"""The contract every Evidence keeps, checked recursively over members and rows.

* ``passed`` is "the bound clears the threshold in the stated direction", unless ``reason``
  says why not (then the claim fails);
* ``low <= estimate <= high`` (undefined statistics carry NaN and a reason);
* a single claim's headline is its deciding row, a composite's its deciding member (same
  metric, numbers, threshold, direction, n and unit), and a composite passes exactly when
  every member does;
* the envelope holds every row's interval.
"""

from __future__ import annotations

import math

from mi_assert.stats.bootstrap import clears
from mi_assert.stats.evidence import Evidence

_HEADLINE = ("metric", "estimate", "low", "high", "bound", "n", "threshold", "alternative", "unit")


def _same(a: object, b: object) -> bool:
    both_nan = isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b)
    return a == b or both_nan


def check_evidence(ev: Evidence) -> Evidence:
    if ev.reason:
        assert not ev.passed, ev.summary_line()
    else:
        assert ev.passed == clears(ev.bound, ev.threshold, ev.alternative), ev.summary_line()
    if math.isfinite(ev.estimate):
        assert ev.low <= ev.estimate <= ev.high, ev.summary_line()
    for row in ev.per_seed:
        threshold = ev.threshold if row.threshold is None else row.threshold
        assert row.passed == clears(row.bound, threshold, row.alternative), (ev.claim, row)
        if math.isfinite(row.estimate):
            assert row.low <= row.estimate <= row.high, (ev.claim, row)
    if ev.envelope is not None:
        assert all(ev.envelope[0] <= r.low and r.high <= ev.envelope[1] for r in ev.per_seed)
    if ev.family:
        (decider,) = [m for m in ev.family if m.claim == ev.deciding]
        for name in _HEADLINE:
            assert _same(getattr(ev, name), getattr(decider, name)), name
        assert ev.passed == all(m.passed for m in ev.family)
        for member in ev.family:
            check_evidence(member)
    elif ev.per_seed:
        rows = ev.per_seed
        deciding = next(r for r in rows if r.name == ev.deciding) if len(rows) > 1 else rows[0]
        assert (ev.estimate, ev.low, ev.high, ev.bound, ev.n) == (
            deciding.estimate, deciding.low, deciding.high, deciding.bound, deciding.n)
    return ev
