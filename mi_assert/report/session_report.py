"""The report of a running pytest session, written so that a stopped or broken run still
leaves the whole story on disk.

* While tests run, ``report.json`` is rewritten at most every ``interval_s`` seconds with
  ``complete: false`` (a run killed with SIGKILL loses at most the records of the last window,
  or of the test phase running then).
* On SIGTERM / SIGINT (:mod:`mi_assert.report.interrupt`) ``report.json`` and then
  ``report.html`` are written at once, with every record of the test phases finished so far,
  ``complete: false`` and ``interrupted`` naming the signal; the final write while pytest
  unwinds adds the records the interrupted test had made.
* A test whose xdist worker crashed is listed in ``crashed`` (:func:`~mi_assert.report.collect.
  crash_entry`); the other records of that worker, sent with each finished test, stay.
* At the end both files are written, ``complete: true`` unless the run was interrupted.

A report that cannot be written (a full disk, a folder that became read-only) never stops the
tests and never raises out of a pytest hook. A write while tests run warns once and is tried
again at the next one. A final write that fails leaves the previous report files as they were,
gives an error naming the folder and the OS error, and makes a green run's exit status
non-zero (:func:`exit_status_when_unwritten`).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mi_assert.report.collect import crash_entry
from mi_assert.report.json_report import build_report, write_json, write_report
from mi_assert.report.progress import emit

Records = Sequence[dict[str, Any]]

#: what ``interrupted`` says when pytest was interrupted without mi-assert seeing a signal
#: (a KeyboardInterrupt raised by code, ``pytest.exit`` from a test)
PYTEST_INTERRUPT = "KeyboardInterrupt"


def exit_status_when_unwritten(exitstatus: int) -> int:
    """The run's exit status when the final report could not be written.

    The test results stand: a run that failed or was interrupted keeps its status (1, 2, ...),
    so the CI log still says why. A run that would have been green (0) exits with 3 (pytest's
    ``INTERNAL_ERROR``: something other than the tests went wrong) instead: CI that publishes
    the report must not pass silently without one, and 3 tells this apart from failed tests.
    """
    return 3 if exitstatus == 0 else exitstatus


@dataclass
class SessionReport:
    """Where and what this session's ``report.json`` / ``report.html`` say so far."""

    folder: Path
    interval_s: float = 5.0
    interrupted: str | None = None
    crashed: list[dict[str, Any]] = field(default_factory=list)
    _last_partial: float = float("-inf")
    _partial_failed: bool = False
    _on_disk: tuple[int, int] = (0, 0)  # (records, crashed) in the last partial write

    def note_crash(self, report: Any) -> bool:
        """Remember ``report``'s test if its worker crashed; True if it did."""
        entry = crash_entry(report)
        if entry is not None:
            self.crashed.append(entry)
        return entry is not None

    def write_partial(self, records: Records, meta: Mapping[str, Any]) -> None:
        """``report.json`` with ``complete: false`` if it lacks records or crashes, unless one
        was written in the last ``interval_s`` (rewriting every record after every test would
        be quadratic). Called after every test report, so what one window held back is
        written after the next test phase."""
        now = time.monotonic()
        news = (len(records), len(self.crashed))
        if news == self._on_disk or now - self._last_partial < self.interval_s:
            return
        self._last_partial = now
        try:
            write_json(self.folder, self._document(records, meta, None, complete=False))
            self._on_disk = news
        except OSError as exc:
            if not self._partial_failed:
                emit(f"mi-assert: WARNING: {self._unwritten(exc)}; the tests go on and the "
                     "report is written again at the end of the run")
            self._partial_failed = True

    def write_on_signal(self, signal_name: str, records: Records, meta: Mapping[str, Any],
                        comparison: Mapping[str, Any] | None) -> None:
        """Both files now, ``interrupted: signal_name``; says on the terminal where they are."""
        self.interrupted = signal_name
        doc = self._document(records, meta, comparison, complete=False)
        try:
            json_path, html_path = write_report(self.folder, doc)
        except OSError as exc:
            emit(f"mi-assert: {signal_name}: {self._unwritten(exc)}")
            return
        emit(f"mi-assert: {signal_name}: partial report written: {json_path} and {html_path} "
             f"({len(records)} claim(s), complete: false); stopping the run")

    def write_final(self, records: Records, meta: Mapping[str, Any],
                    comparison: Mapping[str, Any] | None, pytest_interrupted: bool) -> tuple[str, bool]:
        """Both files at the end of the session: (the line to print, whether they were written)."""
        if pytest_interrupted and self.interrupted is None:
            self.interrupted = PYTEST_INTERRUPT
        complete = self.interrupted is None
        try:
            json_path, html_path = write_report(
                self.folder, self._document(records, meta, comparison, complete=complete))
        except OSError as exc:
            return (f"ERROR: {self._unwritten(exc)}; the test results above stand, but the run "
                    "is not green without its report"), False
        if complete:
            return f"report written: {html_path} (+ {json_path.name})", True
        return (f"partial report (stopped by {self.interrupted}, complete: false) written: "
                f"{html_path} (+ {json_path.name})"), True

    def _document(self, records: Records, meta: Mapping[str, Any],
                  comparison: Mapping[str, Any] | None, complete: bool) -> dict[str, Any]:
        return build_report(records, meta, comparison, complete=complete,
                            interrupted=self.interrupted, crashed=self.crashed)

    def _unwritten(self, exc: OSError) -> str:
        return (f"could not write the report in {self.folder} ({type(exc).__name__}: {exc}); "
                "the report files already there, if any, are unchanged")
