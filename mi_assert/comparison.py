"""How a bound and a threshold are printed, everywhere: the relation that holds for the
numbers (``>``, ``<=``, ``<``, ``>=``), with enough digits that unequal values print unequal.

Used by :class:`~mi_assert.stats.evidence.Evidence` and by every report surface
(:mod:`mi_assert.report.readout`). Standard library only: the plugin imports it at startup.
"""

from __future__ import annotations

import math
from typing import Any


def finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def fmt(value: Any, digits: int = 3) -> str:
    """``0.812``; ``nan`` for None/NaN (JSON stores non-finite numbers as null)."""
    if not finite(value):
        return "nan"
    return f"{value:.{digits}f}"


def pair(a: float, b: float) -> tuple[str, str]:
    """Both numbers with enough digits (3 to 6) that unequal values print unequal."""
    for digits in range(3, 7):
        sa, sb = fmt(a, digits), fmt(b, digits)
        if sa != sb or a == b:
            return sa, sb
    return fmt(a, 6), fmt(b, 6)


def holds(bound: Any, threshold: Any, alternative: Any) -> str:
    """The relation between bound and threshold that holds (``?`` when either is not a number)."""
    if not (finite(bound) and finite(threshold)):
        return "?"
    if alternative == "less":
        return "<" if bound < threshold else ">="
    return ">" if bound > threshold else "<="


def relation(bound: Any, threshold: Any, alternative: Any, reason: str = "") -> str:
    """``bound 0.812 > threshold 0.400``; with a reason (an undefined statistic, a Holm
    step-down), the numbers without a relation, then the reason."""
    rel = holds(bound, threshold, alternative)
    if reason or rel == "?":
        text = f"bound {fmt(bound)}, threshold {fmt(threshold)}"
        return f"{text}: {reason}" if reason else text
    sb, st = pair(float(bound), float(threshold))
    return f"bound {sb} {rel} threshold {st}"


def side(alpha: Any, alternative: Any) -> str:
    """``one-sided 95% lower bound`` (``upper`` for a "less" claim)."""
    level = f"{100 * (1 - float(alpha)):.0f}% " if finite(alpha) else ""
    return f"one-sided {level}{'upper' if alternative == 'less' else 'lower'} bound"
