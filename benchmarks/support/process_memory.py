"""Peak resident-set measurement for CPU benchmarks run one case per subprocess (Linux)."""

from __future__ import annotations

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
