"""Write the partial report when the run is stopped by SIGTERM (CI cancel, ``timeout``,
Kubernetes) or SIGINT (Ctrl-C), then stop the run the way it would have stopped.

Only the controller process (the one that collects every record) installs the handlers, and
only from its main thread (Python runs signal handlers there, and ``signal.signal`` works only
there). A signal that was ignored (``SIG_IGN``, e.g. under ``nohup``) or handled outside Python
is left alone.

After writing, the handler stops the run:

* SIGINT: the previous handler runs (Python's default raises ``KeyboardInterrupt``), so pytest
  stops as on Ctrl-C: teardowns run, the summary prints, exit status 2;
* SIGTERM: a previous Python handler runs if there was one; else ``pytest.exit`` with exit
  status 143 (128 + 15, what a shell reports for SIGTERM), so teardowns and junit-xml still run.

The previous handlers come back as soon as one signal was handled: a second SIGTERM kills the
process at once, a second Ctrl-C interrupts the teardowns, as without mi-assert.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

#: the signals that stop a run and get the partial report written first
STOP_SIGNALS: tuple[signal.Signals, ...] = (signal.SIGINT, signal.SIGTERM)

Flush = Callable[[str], None]


class SignalFlush:
    """``flush(signal_name)`` on SIGTERM/SIGINT, then the run stops (see the module doc)."""

    def __init__(self, flush: Flush) -> None:
        self.flush = flush
        self._previous: dict[signal.Signals, Any] = {}

    def install(self) -> bool:
        """Install the handlers; False (nothing installed) outside the main thread."""
        if threading.current_thread() is not threading.main_thread():
            return False
        for signum in STOP_SIGNALS:
            previous = signal.getsignal(signum)
            if previous is signal.SIG_IGN or previous is None:
                continue
            signal.signal(signum, self._handle)
            self._previous[signum] = previous
        return bool(self._previous)

    def restore(self) -> None:
        """Put the previous handlers back (where ours is still the one installed)."""
        previous, self._previous = self._previous, {}
        for signum, handler in previous.items():
            if signal.getsignal(signum) == self._handle:
                signal.signal(signum, handler)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        sig = signal.Signals(signum)
        previous = self._previous.get(sig, signal.SIG_DFL)
        self.restore()
        try:
            self.flush(sig.name)
        except Exception as exc:  # a broken report must not swallow the signal
            print(f"mi-assert: {sig.name}: could not write the partial report: "
                  f"{type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        stop_run(sig, previous, frame)


def stop_run(sig: signal.Signals, previous: Any, frame: FrameType | None) -> None:
    """Stop the run as ``sig`` would have without mi-assert's handler (``previous``)."""
    if callable(previous):
        previous(sig, frame)
        return
    if sig == signal.SIGINT:
        raise KeyboardInterrupt
    import pytest

    pytest.exit(f"stopped by {sig.name}", returncode=128 + int(sig))
