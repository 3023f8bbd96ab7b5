"""Peak resident-set measurement for CPU benchmarks run one case per subprocess (Linux)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path


def rss_kib(field: str) -> int:
    """A memory field of ``/proc/self/status`` (``VmRSS``, ``VmHWM``) in KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def reset_peak() -> int:
    """Reset the peak resident set to the current one; return the current one (KiB)."""
    Path("/proc/self/clear_refs").write_text("5")
    return rss_kib("VmRSS")


def timed_repeats(work: Callable[[], object], repeats: int,
                  before: Callable[[int], object] | None = None) -> tuple[list[float], list[float], int]:
    """Run ``work`` ``repeats`` times (``before(i)`` first, e.g. to clear a cache): wall and CPU
    seconds per run, and the peak resident-set growth of the first run (KiB)."""
    times: list[float] = []
    cpu_times: list[float] = []
    peak_kib: int | None = None
    for i in range(repeats):
        if before is not None:
            before(i)
        start_rss = reset_peak()
        start, start_cpu = time.perf_counter(), time.process_time()
        work()
        times.append(time.perf_counter() - start)
        cpu_times.append(time.process_time() - start_cpu)
        if peak_kib is None:
            peak_kib = rss_kib("VmHWM") - start_rss
    return times, cpu_times, peak_kib or 0
