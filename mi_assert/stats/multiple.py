"""Multiple-comparison control for a family of claims checked in one call."""

from __future__ import annotations

from collections.abc import Sequence

from mi_assert.errors import MiAssertInputError


def holm_adjust(p_values: Sequence[float]) -> list[float]:
    """Holm–Bonferroni adjusted p-values (step-down, monotone, capped at 1).

    A claim in the family passes at family-wise level ``alpha`` when its adjusted p-value is
    below ``alpha``. Equivalent: test the i-th smallest p-value at ``alpha / (m - i)``.
    """
    bad = [p for p in p_values if not 0.0 <= float(p) <= 1.0]
    if bad:
        raise MiAssertInputError(f"p-values must lie in [0, 1]; got {bad}")
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, idx in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[idx]))
        adjusted[idx] = running
    return adjusted


def holm_alphas(m: int, alpha: float) -> list[float]:
    """Per-rank levels alpha/m, alpha/(m-1), ..., alpha used by Holm's procedure."""
    return [alpha / (m - rank) for rank in range(m)]
