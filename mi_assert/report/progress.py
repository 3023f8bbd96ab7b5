"""A dependency-free progress display for long sweeps (checkpoints, patching grids).

Code that loops calls :func:`progress` (an iterable wrapper) or uses :class:`Progress`
directly. Lines go to a *sink*: stderr by default; inside pytest the plugin installs one that
writes through the terminal reporter with output capture suspended, so progress shows live.
Output is throttled (at most one line per ``min_interval`` seconds, plus the last one).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")
Sink = Callable[[str], None]

_sink: Sink | None = None


def set_sink(sink: Sink | None) -> Sink | None:
    """Install where progress lines go (None: stderr). Returns the previous sink."""
    global _sink
    previous, _sink = _sink, sink
    return previous


def emit(line: str) -> None:
    if _sink is not None:
        _sink(line)
    else:
        print(line, file=sys.stderr, flush=True)


class Progress:
    """``Progress(total, label)``; call :meth:`update` per item; :meth:`close` prints the end."""

    def __init__(self, total: int | None, label: str, min_interval: float = 1.0) -> None:
        self.total = total
        self.label = label
        self.done = 0
        self.min_interval = min_interval
        self.started = time.monotonic()
        self._last_emit = float("-inf")

    def line(self, note: str = "") -> str:
        elapsed = time.monotonic() - self.started
        if self.total:
            frac = self.done / self.total
            width = 20
            bar = "#" * int(round(frac * width)) + "." * (width - int(round(frac * width)))
            eta = elapsed / self.done * (self.total - self.done) if self.done else float("nan")
            eta_s = f" eta {eta:5.1f}s" if eta == eta else ""
            text = f"[mi-assert] {self.label} [{bar}] {self.done}/{self.total} {elapsed:5.1f}s{eta_s}"
        else:
            text = f"[mi-assert] {self.label} {self.done} done {elapsed:5.1f}s"
        return text + (f"  {note}" if note else "")

    def update(self, n: int = 1, note: str = "") -> None:
        self.done += n
        now = time.monotonic()
        finished = self.total is not None and self.done >= self.total
        if finished or now - self._last_emit >= self.min_interval:
            self._last_emit = now
            emit(self.line(note))

    def close(self, note: str = "") -> None:
        if self.total is None or self.done < self.total:
            emit(self.line(note or "stopped"))


def progress(items: Iterable[T], label: str, total: int | None = None,
             min_interval: float = 1.0) -> Iterator[T]:
    """Yield from ``items`` while reporting progress (``total`` defaults to ``len(items)``)."""
    if total is None:
        try:
            total = len(items)  # type: ignore[arg-type]
        except TypeError:
            total = None
    bar = Progress(total, label, min_interval)
    try:
        for item in items:
            yield item
            bar.update()
    finally:
        bar.close()
