"""From evidence to a test outcome: record it for reports, then return it or raise.

The statistics in :mod:`mi_assert.stats` never raise on a failed claim; every ``assert_*`` is
``check_*`` followed by :func:`raise_if_failed`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mi_assert.record import record

if TYPE_CHECKING:
    from mi_assert.stats.evidence import Evidence


class ClaimFailed(AssertionError):
    """An AssertionError that carries its :class:`~mi_assert.stats.evidence.Evidence`."""

    def __init__(self, message: str, evidence: Evidence) -> None:
        super().__init__(message)
        self.evidence = evidence


def fail(evidence: Evidence, hint: str = "") -> None:
    """Raise :class:`ClaimFailed` with the evidence table and an optional hint."""
    __tracebackhide__ = True
    message = "claim does not hold\n" + evidence.table()
    if hint:
        message += "\n" + hint
    raise ClaimFailed(message, evidence)


def raise_if_failed(evidence: Evidence, hint: str = "") -> Evidence:
    """Record the evidence for reports, then return it or raise :class:`ClaimFailed`."""
    __tracebackhide__ = True
    record(evidence)
    if not evidence.passed:
        fail(evidence, hint)
    return evidence
