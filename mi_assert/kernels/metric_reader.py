"""Reads a metric the way the sweeps need it: at one position when the metric says which.

The metric protocol (team brief): ``metric(logits[B, T, V]) -> [B]``; optionally
``metric.position`` (the one position it reads) and ``metric.at_position(logits[B, V]) -> [B]``.
Knowing the position lets a sweep drop every later position (causal attention: they cannot
influence it) and unembed only that position.
"""

from __future__ import annotations

from typing import Any, cast

from torch import Tensor


class MetricReader:
    """Wraps a metric for one sequence length ``n_pos``."""

    def __init__(self, metric: Any, n_pos: int) -> None:
        self.metric = metric
        position = getattr(metric, "position", None)
        at_position = getattr(metric, "at_position", None)
        if position is not None and callable(at_position):
            position = int(position)
            if not -n_pos <= position < n_pos:
                raise IndexError(f"metric.position={position} is outside a sequence of {n_pos} tokens")
            self.position: int | None = position % n_pos
        else:
            self.position = None

    @property
    def n_keep(self) -> int | None:
        """How many leading positions the metric can depend on (None: all)."""
        return None if self.position is None else self.position + 1

    def __call__(self, logits: Tensor) -> Tensor:
        """Per-prompt metric ``[B]`` from ``[B, V]`` (at the position) or ``[B, T, V]`` logits."""
        if self.position is not None:
            return cast(Tensor, self.metric.at_position(logits))
        return cast(Tensor, self.metric(logits))
