"""Session-wide record of evidence, independent of pytest.

Assertions call :func:`record`; the pytest plugin sets the current test id with
:func:`set_context` and collects with :func:`drain`. Outside pytest the records simply
accumulate (and :func:`drain` empties them).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the plugin imports this module for every test: keep it free of torch/scipy
    from mi_assert.stats.evidence import Evidence

_lock = threading.Lock()
_records: list[Recorded] = []
_context: dict[str, Any] = {}


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
        _records.append(Recorded(evidence, dict(_context)))


def drain() -> list[Recorded]:
    with _lock:
        out = list(_records)
        _records.clear()
    return out


def peek() -> list[Recorded]:
    with _lock:
        return list(_records)
