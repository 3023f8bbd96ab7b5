"""Session-wide record of evidence, independent of pytest.

Assertions call :func:`record`; the pytest plugin sets the current test id with
:func:`set_context` and collects with :func:`drain`. Outside pytest the records simply
accumulate (and :func:`drain` empties them).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the plugin imports this module for every test: keep it free of torch/scipy
    from mi_assert.stats.evidence import Evidence

_lock = threading.Lock()
_records: list[Recorded] = []
_context: dict[str, Any] = {}
_suppress_depth = 0


@dataclass
class Recorded:
    evidence: Evidence
    context: dict[str, Any] = field(default_factory=dict)


def set_context(**context: Any) -> None:
    """Set what every later record is tagged with (e.g. ``nodeid=...``); None values clear."""
    with _lock:
        for key, value in context.items():
            if value is None:
                _context.pop(key, None)
            else:
                _context[key] = value


def record(evidence: Evidence) -> None:
    with _lock:
        if _suppress_depth == 0:
            _records.append(Recorded(evidence, dict(_context)))


@contextmanager
def suppressed() -> Iterator[None]:
    """Inside the block, evidence is not recorded (e.g. calibration's hundreds of draws are
    about the method, not about any test's model, and would flood reports)."""
    global _suppress_depth
    with _lock:
        _suppress_depth += 1
    try:
        yield
    finally:
        with _lock:
            _suppress_depth -= 1


def drain() -> list[Recorded]:
    with _lock:
        out = list(_records)
        _records.clear()
    return out


def peek() -> list[Recorded]:
    with _lock:
        return list(_records)
