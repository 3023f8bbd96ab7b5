"""The recorder: context-local, installed by the plugin; nothing accumulates outside pytest."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from mi_assert import record
from mi_assert.stats.evidence import Evidence

ROOT = Path(__file__).resolve().parents[1]


def _evidence(claim: str) -> Evidence:
    return Evidence(claim=claim, metric="m", estimate=1.0, low=1.0, high=1.0, bound=1.0, n=1,
                    threshold=0.5, alpha=0.05, alternative="greater", passed=True)


def test_suppressed_block_records_nothing_and_restores():
    with record.recording() as rec:
        with record.suppressed():
            record.record(_evidence("hidden"))
            with record.suppressed():
                record.record(_evidence("hidden too"))
        record.record(_evidence("kept"))
    assert [r.evidence.claim for r in rec.peek()] == ["kept"]


def test_the_plugin_installs_one_recorder_and_tags_the_test(request):
    from mi_assert.plugin import session_recorder

    outer = record.current()
    assert outer is not None and outer is session_recorder(request.config)
    with record.recording() as inner:
        assert record.current() is inner
        record.record(_evidence("inner"))
    assert record.current() is outer and [r.evidence.claim for r in inner.drain()] == ["inner"]
    with outer.suppressed():
        record.set_context(extra="x")
        record.record(_evidence("not kept"))
    record.set_context(extra=None)
    assert outer.peek() == []


def test_nothing_accumulates_outside_pytest():
    code = """
from mi_assert import record
from mi_assert.stats.claims import ClaimSpec
from mi_assert.verdict import raise_if_failed
import numpy as np

assert record.current() is None
ev = ClaimSpec("c", "m", {0: np.linspace(0.6, 1.0, 16)}, threshold=0.5).evaluate()
for _ in range(3):
    raise_if_failed(ev)
    record.record(ev)
    record.set_context(nodeid="x")
assert record.current() is None and record.peek() == [] and record.drain() == []
with record.recording() as rec:
    raise_if_failed(ev)
assert [r.evidence.claim for r in rec.peek()] == ["c"] and record.current() is None
print("ok")
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=300, cwd=ROOT)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stdout + result.stderr


def test_a_claim_checked_in_a_thread_the_test_starts_is_recorded():
    import threading

    from mi_assert import record

    recorder = record.Recorder()
    token = record.install(recorder)
    try:
        worker = threading.Thread(target=lambda: record.record(_evidence("from a thread")))
        worker.start()
        worker.join()
    finally:
        record.uninstall(token)
    assert [r.evidence.claim for r in recorder.peek()] == ["from a thread"]
    record.record(_evidence("after uninstall"))
    assert len(recorder.peek()) == 1
