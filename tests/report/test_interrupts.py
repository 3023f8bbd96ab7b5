"""What a stopped or broken run leaves on disk: SIGTERM / SIGINT mid-run, an xdist worker
killed with SIGKILL, a report folder whose disk is full.

The signal and crash tests run pytest in a subprocess (a signal must hit a whole process);
the full-disk test runs in-process (pytester) so it can patch the file writes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from mi_assert.report.interrupt import SignalFlush
from mi_assert.report.schema import make_record
from mi_assert.report.session_report import SessionReport, exit_status_when_unwritten

N_QUICK = 8

#: claims that take milliseconds (no model), then a test that blocks until it is signalled
CLAIMS = '''
import numpy as np

from mi_assert.stats.claims import ClaimSpec
from mi_assert.verdict import raise_if_failed


def claim(text):
    samples = lambda seed: np.random.default_rng(seed).normal(1.0, 0.1, 20)
    raise_if_failed(ClaimSpec(text, "score", samples, threshold=0.5, seeds=[0]).evaluate())
'''

QUICK_TESTS = f'''
import pytest
from claims import claim

@pytest.mark.parametrize("i", range({N_QUICK}))
def test_quick(i):
    claim(f"quick claim {{i}}")
'''

BLOCKING_TEST = '''
import os
import time
from pathlib import Path

from claims import claim

def test_blocks():
    claim("claim before the block")
    Path(os.environ["MI_TEST_MARKER"]).write_text("blocking")
    time.sleep(120)
'''

#: claims, then a test that kills its own worker; under ``-n 2`` each worker starts with a
#: chunk of two of the first tests, so the dead worker had finished claims of its own
KILLED_WORKER_TESTS = f'''
import os
import signal

import pytest
from claims import claim

@pytest.mark.parametrize("i", range({N_QUICK}))
def test_before_kill(i):
    claim(f"worker claim {{i}}")

def test_kills_its_worker():
    claim("claim the crash takes with it")
    os.kill(os.getpid(), signal.SIGKILL)
'''

#: start pytest with Ctrl-C and SIGTERM doing what they do in a terminal, even when this test
#: runs under a parent that ignores them (a background job ignores SIGINT)
PYTEST_MAIN = """
import signal, sys
signal.signal(signal.SIGINT, signal.default_int_handler)
signal.signal(signal.SIGTERM, signal.SIG_DFL)
import pytest
sys.exit(pytest.main())
"""

posix_only = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")


def _write_suite(folder: Path, **files: str) -> None:
    (folder / "pytest.ini").write_text("[pytest]\n")  # the rootdir: no project settings
    (folder / "claims.py").write_text(CLAIMS)
    for name, text in files.items():
        (folder / f"{name}.py").write_text(text)


def _start_pytest(folder: Path, *args: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PYTEST_", "MI_ASSERT_")) and k != "PYTHONBREAKPOINT"}
    env.update(MI_TEST_MARKER=str(folder / "marker"), OMP_NUM_THREADS="1")
    command = [sys.executable, "-c", PYTEST_MAIN, "-q", "-p", "no:randomly",
               "-p", "no:cacheprovider", "--mi-report", "report", *args]
    return subprocess.Popen(command, cwd=folder, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def _wait_for_marker(proc: subprocess.Popen[str], marker: Path, timeout_s: float = 180) -> None:
    deadline = time.monotonic() + timeout_s
    while not marker.exists():
        if proc.poll() is not None:
            pytest.fail(f"pytest ended before blocking (rc {proc.returncode}):\n{proc.communicate()[0]}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"pytest did not reach the blocking test:\n{proc.communicate()[0]}")
        time.sleep(0.1)


def _finish(proc: subprocess.Popen[str], timeout_s: float = 180) -> str:
    try:
        return proc.communicate(timeout=timeout_s)[0]
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail(f"pytest did not stop after the signal:\n{proc.communicate()[0]}")


def _claims(doc: dict) -> set[str]:
    return {rec["evidence"]["claim"] for rec in doc["records"]}


def _quick_claims(prefix: str = "quick claim") -> set[str]:
    return {f"{prefix} {i}" for i in range(N_QUICK)}


def _temp_files(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if p.name.endswith(".tmp")]


@posix_only
@pytest.mark.parametrize(("sig", "exit_status"), [(signal.SIGTERM, 128 + 15), (signal.SIGINT, 2)],
                         ids=["SIGTERM", "SIGINT"])
def test_signal_mid_run_writes_every_finished_record(tmp_path: Path, sig: signal.Signals,
                                                     exit_status: int) -> None:
    _write_suite(tmp_path, test_a_quick=QUICK_TESTS, test_b_blocks=BLOCKING_TEST)
    proc = _start_pytest(tmp_path, "--mi-save-baseline", "main", "--mi-baseline-dir", "bl")
    _wait_for_marker(proc, tmp_path / "marker")
    proc.send_signal(sig)
    output = _finish(proc)

    assert proc.returncode == exit_status, output
    # a stopped run is not a baseline: saved, its absent claims would read as "missing" later
    assert not list((tmp_path / "bl").rglob("*.json")), output
    if sig == signal.SIGINT:  # pytest.exit (SIGTERM) skips the terminal summary
        assert "baseline 'main' not saved: the run was stopped" in output
    report = tmp_path / "report"
    doc = json.loads((report / "report.json").read_text())
    assert doc["complete"] is False and doc["interrupted"] == sig.name
    # the records of every test that finished, and the one the stopped test had made
    assert _claims(doc) == _quick_claims() | {"claim before the block"}
    page = (report / "report.html").read_text()
    assert f"stopped by {sig.name}" in page and "quick claim 7" in page
    assert f"mi-assert: {sig.name}: partial report written: {report / 'report.json'}" in output
    assert _temp_files(report) == []


@posix_only
def test_killed_xdist_worker_keeps_every_record_and_lists_the_crash(tmp_path: Path) -> None:
    pytest.importorskip("xdist", reason="pytest-xdist (the dev extra) is not installed")
    _write_suite(tmp_path, test_a_killed=KILLED_WORKER_TESTS,
                 test_b_quick=QUICK_TESTS.replace("test_quick", "test_other_worker"))
    proc = _start_pytest(tmp_path, "-n", "2")
    output = _finish(proc)

    assert proc.returncode == 1, output
    assert "crashed while running 'test_a_killed.py::test_kills_its_worker'" in output
    report = tmp_path / "report"
    doc = json.loads((report / "report.json").read_text())
    assert doc["complete"] is True and doc["interrupted"] is None
    # every finished test's claims, from both workers; the killed test's own claim died with it
    assert _claims(doc) == _quick_claims("worker claim") | _quick_claims()
    (crash,) = doc["crashed"]
    assert crash["nodeid"] == "test_a_killed.py::test_kills_its_worker"
    assert crash["outcome"] == "crashed"
    workers = {r["worker"] for r in doc["records"]}
    assert crash["worker"] in workers and len(workers) >= 2
    page = (report / "report.html").read_text()
    assert "CRASHED: test_a_killed.py::test_kills_its_worker" in page


#: every fsync in atomic.py fails as on a full disk (the temp file is written, then ENOSPC)
FULL_DISK_CONFTEST = '''
import errno
import os

import mi_assert.report.atomic as atomic


class FullDiskOs:
    def __getattr__(self, name):
        return getattr(os, name)

    @staticmethod
    def fsync(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def pytest_configure(config):
    atomic.os = FullDiskOs()


def pytest_unconfigure(config):
    atomic.os = os
'''


def test_full_disk_keeps_the_previous_report_and_fails_a_green_run(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(claims=CLAIMS, test_a_quick=QUICK_TESTS)
    first = pytester.runpytest("--mi-report", "report", "-p", "no:randomly")
    assert first.ret == 0
    report = pytester.path / "report"
    before = {name: (report / name).read_text() for name in ("report.json", "report.html")}

    pytester.makeconftest(FULL_DISK_CONFTEST)
    full = pytester.runpytest("--mi-report", "report", "-p", "no:randomly")
    full.assert_outcomes(passed=N_QUICK)  # the test results stand
    assert full.ret == pytest.ExitCode.INTERNAL_ERROR
    text = full.stdout.str() + full.stderr.str()
    assert "INTERNALERROR" not in text and "Traceback" not in text
    reason = f"could not write the report in {report} (OSError: [Errno 28] No space left on device)"
    assert f"mi-assert: WARNING: {reason}" in text  # the write while tests ran
    assert f"mi-assert: ERROR: {reason}" in text and "the test results above stand" in text
    assert {name: (report / name).read_text() for name in before} == before
    assert _temp_files(report) == []


def test_unwritten_report_fails_only_a_green_run() -> None:
    assert exit_status_when_unwritten(0) == 3
    assert [exit_status_when_unwritten(s) for s in (1, 2, 5, 143)] == [1, 2, 5, 143]


@posix_only
def test_handlers_come_back_and_stay_off_other_threads(pytester: pytest.Pytester) -> None:
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    pytester.makepyfile(claims=CLAIMS, test_a_quick=QUICK_TESTS)
    assert pytester.runpytest("--mi-report", "report", "-p", "no:randomly").ret == 0
    assert {sig: signal.getsignal(sig) for sig in before} == before

    installed: list[bool] = []
    flush = SignalFlush(lambda name: None)
    thread = threading.Thread(target=lambda: installed.append(flush.install()))
    thread.start()
    thread.join()
    assert installed == [False]
    assert {sig: signal.getsignal(sig) for sig in before} == before


def _record(claim: str) -> dict:
    ev = {"claim": claim, "metric": "score", "estimate": 0.8, "low": 0.7, "high": 0.9,
          "bound": 0.7, "n": 10, "threshold": 0.5, "alpha": 0.05, "alternative": "greater",
          "passed": True, "verdict": "PASS", "per_seed": []}
    return make_record(ev, {"nodeid": f"t.py::test_{claim}"})


def test_partial_report_catches_up_after_the_next_test_phase(tmp_path: Path) -> None:
    report = SessionReport(tmp_path, interval_s=0.2)
    records = [_record("a")]
    report.write_partial(records, {})
    records.append(_record("b"))
    report.write_partial(records, {})  # within the window: held back
    on_disk = json.loads((tmp_path / "report.json").read_text())
    assert _claims(on_disk) == {"a"} and on_disk["complete"] is False
    time.sleep(0.25)
    report.write_partial(records, {})  # the next test phase, no new records of its own
    assert _claims(json.loads((tmp_path / "report.json").read_text())) == {"a", "b"}
