"""The session record: suppressed blocks keep their evidence out of reports."""

from __future__ import annotations

from mi_assert import record
from mi_assert.stats.evidence import Evidence


def _evidence(claim: str) -> Evidence:
    return Evidence(claim=claim, metric="m", estimate=1.0, low=1.0, high=1.0, bound=1.0, n=1,
                    threshold=0.5, alpha=0.05, alternative="greater", passed=True)


def test_suppressed_block_records_nothing_and_restores():
    before = len(record.peek())
    with record.suppressed():
        record.record(_evidence("hidden"))
        with record.suppressed():
            record.record(_evidence("hidden too"))
    record.record(_evidence("kept"))
    claims = [r.evidence.claim for r in record.peek()[before:]]
    assert claims == ["kept"]
