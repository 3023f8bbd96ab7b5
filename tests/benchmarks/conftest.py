"""Benchmark fixtures: a GPU-synchronised timer and the machine description.

pytest-benchmark's default timer reads the host clock around a call that only *enqueues* GPU
work, so it under-reports (about 7x on a 4096^3 bf16 matmul). ``gpu_bench`` times through
``benchmark.pedantic`` with a function that synchronises the device after every call, warms
up first, and records the GPU name, driver and torch version in ``extra_info``.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from typing import Any

import pytest
import torch

os.environ.setdefault("TQDM_DISABLE", "1")


def _driver() -> str:
    try:
        return subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                              capture_output=True, text=True, timeout=20).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


@pytest.fixture(scope="session")
def device_description() -> dict[str, Any]:
    info: dict[str, Any] = {"torch": torch.__version__}
    if torch.cuda.is_available():
        info.update(gpu=torch.cuda.get_device_name(0), driver=_driver(), cuda=torch.version.cuda)
    else:
        info.update(gpu="none", driver="none")
    return info


@pytest.fixture
def gpu_bench(benchmark: Any, device_description: dict[str, Any]) -> Callable[..., Any]:
    """``gpu_bench(fn, device, rounds=5, warmup=1) -> (fn's result, median seconds)``, device-synced.

    With ``--benchmark-disable`` pytest-benchmark calls ``fn`` once and keeps no statistics; the
    median is then that one synchronised call's time, so the ratios in ``extra_info`` still exist.
    """

    def run(fn: Callable[[], Any], device: str | torch.device, rounds: int = 5,
            warmup: int = 1) -> Any:
        dev = torch.device(device)

        def synced() -> Any:
            out = fn()
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)
            return out

        for _ in range(warmup):
            synced()
        if dev.type == "cuda":
            torch.cuda.reset_peak_memory_stats(dev)
            base = torch.cuda.memory_allocated(dev)
        seconds, result = seconds_of(lambda: benchmark.pedantic(
            synced, rounds=rounds, iterations=1, warmup_rounds=0), dev)
        if benchmark.stats is not None:
            seconds = benchmark.stats.stats.median
        benchmark.extra_info.update(device_description)
        if dev.type == "cuda":
            benchmark.extra_info["peak_bytes_above_start"] = int(
                torch.cuda.max_memory_allocated(dev) - base)
        return result, seconds

    return run


def seconds_of(fn: Callable[[], Any], device: str | torch.device) -> tuple[float, Any]:
    """One synchronised wall-clock call (for the TL/nnsight reference in the same session)."""
    import time

    dev = torch.device(device)
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    start = time.perf_counter()
    out = fn()
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    return time.perf_counter() - start, out


requires_gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
