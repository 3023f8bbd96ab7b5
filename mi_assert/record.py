"""Where evidence goes for reports: a context-local :class:`Recorder`, installed by the plugin.

Assertions call :func:`record`. Inside pytest the plugin installs one recorder for the session
(:func:`install`) and tags records with the running test (:meth:`Recorder.set_context`).
Outside pytest no recorder is installed and nothing accumulates: a notebook that checks claims
for an hour keeps no evidence, samples or attention arrays behind. To collect evidence
outside pytest, use ``with recording() as rec: ...`` and read ``rec.peek()``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mi_assert import cost

if TYPE_CHECKING:  # the plugin imports this module for every test: keep it free of torch/scipy
    from mi_assert.stats.evidence import Evidence


@dataclass
class Recorded:
    evidence: Evidence
    context: dict[str, Any] = field(default_factory=dict)
    #: what ran since the previous claim of the test (:func:`mi_assert.cost.between`)
    cost: dict[str, Any] = field(default_factory=dict)


class Recorder:
    """Evidence recorded so far, with the context (test id, checkpoint) each was made in."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: list[Recorded] = []
        self._context: dict[str, Any] = {}
        self._suppress_depth = 0
        self._since = cost.snapshot()

    def set_context(self, **context: Any) -> None:
        """Tag every later record with ``context`` (e.g. ``nodeid=...``); None values clear."""
        with self._lock:
            if "nodeid" in context:  # a test starts or ends: its first claim's cost starts here
                self._since = cost.snapshot()
            for key, value in context.items():
                if value is None:
                    self._context.pop(key, None)
                else:
                    self._context[key] = value

    def restart_cost(self) -> None:
        """The next claim's cost counts from now (the test body starts)."""
        with self._lock:
            self._since = cost.snapshot()

    def record(self, evidence: Evidence) -> None:
        now = cost.snapshot()
        with self._lock:
            if self._suppress_depth == 0:
                self._records.append(Recorded(evidence, dict(self._context),
                                              cost.between(self._since, now)))
                self._since = now

    @contextmanager
    def suppressed(self) -> Iterator[None]:
        with self._lock:
            self._suppress_depth += 1
        try:
            yield
        finally:
            with self._lock:
                self._suppress_depth -= 1

    def drain(self) -> list[Recorded]:
        with self._lock:
            out = list(self._records)
            self._records.clear()
        return out

    def peek(self) -> list[Recorded]:
        with self._lock:
            return list(self._records)


_current: ContextVar[Recorder | None] = ContextVar("mi_assert_recorder", default=None)
#: installed recorders, innermost last: a thread a test starts does not inherit the context,
#: so it records into the innermost one
_installed: list[Recorder] = []


def current() -> Recorder | None:
    """The recorder of this context, else the innermost installed one (None outside pytest
    and :func:`recording`)."""
    recorder = _current.get()
    if recorder is None and _installed:
        return _installed[-1]
    return recorder


def install(recorder: Recorder | None) -> Token[Recorder | None]:
    if recorder is not None:
        _installed.append(recorder)
    return _current.set(recorder)


def uninstall(token: Token[Recorder | None]) -> None:
    recorder = _current.get()
    _current.reset(token)
    if recorder is not None and recorder in _installed:
        del _installed[len(_installed) - 1 - _installed[::-1].index(recorder)]


@contextmanager
def recording() -> Iterator[Recorder]:
    """Collect the evidence recorded inside the block (for notebooks and scripts)."""
    recorder = Recorder()
    token = install(recorder)
    try:
        yield recorder
    finally:
        uninstall(token)


def record(evidence: Evidence) -> None:
    recorder = current()
    if recorder is not None:
        recorder.record(evidence)


def set_context(**context: Any) -> None:
    recorder = current()
    if recorder is not None:
        recorder.set_context(**context)


@contextmanager
def suppressed() -> Iterator[None]:
    """Inside the block, evidence is not recorded (e.g. calibration's hundreds of draws are
    about the method, not about any test's model, and would flood reports)."""
    recorder = current()
    if recorder is None:
        yield
        return
    with recorder.suppressed():
        yield


def drain() -> list[Recorded]:
    recorder = current()
    return recorder.drain() if recorder is not None else []


def peek() -> list[Recorded]:
    recorder = current()
    return recorder.peek() if recorder is not None else []
