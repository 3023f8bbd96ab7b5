"""Pinned outputs (a small syrupy): a test renders what a user reads into JSON-able data and
compares it with a committed file; ``MI_ASSERT_UPDATE_SNAPSHOTS=1`` rewrites the file.

Numbers compare to 1e-6 relative, everything else exactly (types included, so ``3`` is not
``3.0``). A case missing from the file fails: snapshots are never written silently.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

UPDATE = os.environ.get("MI_ASSERT_UPDATE_SNAPSHOTS") == "1"
#: float32 sums may differ in the last bits across CPUs (SIMD width); any real change is larger
REL = 1e-6


def jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, (np.floating, np.integer, np.bool_)):
        return jsonable(obj.item())
    if isinstance(obj, float) and not math.isfinite(obj):
        return repr(obj)
    if obj is None or isinstance(obj, (str, int, float, bool)):
        return obj
    return str(obj)


def differences(got: Any, want: Any, where: str) -> list[str]:
    """Where ``got`` differs from the snapshot ``want`` (empty: equal)."""
    if isinstance(want, dict) and isinstance(got, dict):
        diffs = ([f"{where}: keys {sorted(set(got) ^ set(want))} differ"]
                 if set(got) != set(want) else [])
        for key in want.keys() & got.keys():
            diffs += differences(got[key], want[key], f"{where}.{key}")
        return diffs
    if isinstance(want, list) and isinstance(got, list):
        if len(got) != len(want):
            return [f"{where}: {len(got)} items, snapshot has {len(want)}"]
        return [d for i, (g, w) in enumerate(zip(got, want, strict=True))
                for d in differences(g, w, f"{where}[{i}]")]
    if (type(want) is float and isinstance(got, (int, float)) and not isinstance(got, bool)):
        same = got == pytest.approx(want, rel=REL, abs=1e-9)
        return [] if same else [f"{where}: {got!r} != {want!r}"]
    return [] if got == want and type(got) is type(want) else [f"{where}: {got!r} != {want!r}"]


def raised(fn: Callable[[], Any]) -> str:
    """``Type: message`` of the error ``fn`` raises, or ``no error``."""
    try:
        fn()
    except Exception as exc:  # noqa: BLE001 - the snapshot pins which error, whatever it is
        return f"{type(exc).__name__}: {exc}"
    return "no error"


def snapshot_file(path: Path) -> Callable[[], Iterator[dict[str, Any]]]:
    """A module-scoped fixture: the stored cases (rewritten at the end when updating)."""

    @pytest.fixture(scope="module")
    def snapshot() -> Iterator[dict[str, Any]]:
        stored: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
        yield stored
        if UPDATE:
            path.parent.mkdir(exist_ok=True)
            path.write_text(json.dumps(dict(sorted(stored.items())), indent=1,
                                       ensure_ascii=False) + "\n")

    return snapshot


def check_case(name: str, render: Callable[[], Any], snapshot: dict[str, Any]) -> None:
    got = jsonable(render())
    if UPDATE:
        snapshot[name] = got
        return
    assert name in snapshot, (f"no snapshot for {name!r}: run with MI_ASSERT_UPDATE_SNAPSHOTS=1 "
                              "and review the diff")
    diffs = differences(got, snapshot[name], name)
    assert not diffs, "output changed:\n" + "\n".join(diffs[:40])
