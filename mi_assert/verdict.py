"""From evidence to a test outcome: record it for reports, then return it or raise.

The statistics in :mod:`mi_assert.stats` never raise on a failed claim. Every family writes a
non-raising ``check_*`` and gets its ``assert_*`` from :func:`asserting`: the same arguments,
``check_*`` followed by :func:`raise_if_failed`.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, ParamSpec

from mi_assert.record import record

if TYPE_CHECKING:
    from mi_assert.stats.evidence import Evidence

P = ParamSpec("P")


class ClaimFailed(AssertionError):
    """An AssertionError that carries its :class:`~mi_assert.stats.evidence.Evidence`."""

    def __init__(self, message: str, evidence: Evidence) -> None:
        super().__init__(message)
        self.evidence = evidence


def fail(evidence: Evidence, hint: str = "") -> None:
    """Raise :class:`ClaimFailed` with the evidence table and a hint (default: the evidence's)."""
    __tracebackhide__ = True
    message = "claim does not hold\n" + evidence.table()
    hint = hint or evidence.hint
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


def with_family(evidence: Evidence, module: str) -> Evidence:
    """The evidence with ``settings["family"]`` (``heads``, ``causal``, ``sae``...: the package
    of the check that made it), as recorded for reports, which filter by it; kept when set."""
    parts = module.split(".")
    if "family" in evidence.settings or len(parts) < 3 or parts[0] != "mi_assert":
        return evidence
    return evidence.with_context(settings={"family": parts[1]})


def asserting(check: Callable[P, Evidence]) -> Callable[P, Evidence]:
    """The ``assert_*`` of a ``check_*``: the same arguments and documentation; it records the
    evidence, returns it when the claim holds and raises :class:`ClaimFailed` (with the
    evidence's hint) when it does not."""
    name = check.__name__.replace("check_", "assert_", 1)

    @functools.wraps(check)
    def assertion(*args: P.args, **kwargs: P.kwargs) -> Evidence:
        __tracebackhide__ = True
        evidence = check(*args, **kwargs)
        # the report groups by family; the evidence returned stays the check's own
        record(with_family(evidence, check.__module__))
        if not evidence.passed:
            fail(evidence)
        return evidence

    assertion.__name__ = assertion.__qualname__ = name
    assertion.__doc__ = (f"Assert the claim :func:`{check.__name__}` checks: returns its "
                         "Evidence when the claim holds, raises ``ClaimFailed`` (an "
                         "AssertionError carrying the Evidence) when it does not.\n\n"
                         + inspect.cleandoc(check.__doc__ or ""))
    return assertion
