"""What a claim cost: model forward passes, prompts run, seconds, memory.

Backends count every forward pass here (:func:`count_forward`); the recorder takes a
:func:`snapshot` when a test starts and at each recorded claim, so a claim's cost is what ran
since the previous claim of its test (its measurement and its statistics). Memory is the
process's peak resident set (a high-water mark: ``rss_growth_mb`` is how much this claim raised
it) and, where CUDA is in use, the peak allocated on the current device.
"""

from __future__ import annotations

import resource
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any

_lock = threading.Lock()
_forward_passes = 0
_prompts = 0


def count_forward(batch: int) -> None:
    """One forward pass over ``batch`` prompts (called by the backends)."""
    global _forward_passes, _prompts
    with _lock:
        _forward_passes += 1
        _prompts += int(batch)


@dataclass(frozen=True)
class CostSnapshot:
    seconds: float
    forward_passes: int
    prompts: int
    peak_rss_mb: float
    cuda_peak_mb: float | None


def _peak_rss_mb() -> float:
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb / 1024.0 if sys.platform != "darwin" else kb / 2**20  # macOS reports bytes


def _cuda_peak_mb() -> float | None:
    torch: Any = sys.modules.get("torch")  # never import torch just to ask
    if torch is None or not torch.cuda.is_available() or not torch.cuda.is_initialized():
        return None
    return float(torch.cuda.max_memory_allocated()) / 2**20


def snapshot() -> CostSnapshot:
    with _lock:
        passes, prompts = _forward_passes, _prompts
    return CostSnapshot(time.perf_counter(), passes, prompts, _peak_rss_mb(), _cuda_peak_mb())


def between(start: CostSnapshot, end: CostSnapshot) -> dict[str, Any]:
    """The cost of what ran from ``start`` to ``end`` as plain data for the report."""
    out: dict[str, Any] = {
        "seconds": round(end.seconds - start.seconds, 3),
        "forward_passes": end.forward_passes - start.forward_passes,
        "prompts": end.prompts - start.prompts,
        "peak_rss_mb": round(end.peak_rss_mb, 1),
        "rss_growth_mb": round(max(0.0, end.peak_rss_mb - start.peak_rss_mb), 1),
    }
    if end.cuda_peak_mb is not None:
        out["cuda_peak_mb"] = round(end.cuda_peak_mb, 1)
    return out
