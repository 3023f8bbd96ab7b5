"""``--mi-shard I/N``: run one of N disjoint parts of the collected tests (CI matrices).

**The rule.** The unit of sharding is the test *file* (the node id up to the first ``::``):
a file is never split, so every parametrisation of a test (its seeds, the checkpoints of a
sweep whose trajectory the report draws) and a module's fixtures stay in one shard. Files are
dealt out by size: largest first (ties by path), each to the shard with the fewest tests so far
(ties to the lowest index). The assignment depends only on the set of collected node ids
(after ``-k`` / ``-m``), never on the collection order, the machine or ``hash()``; the same
set gives the same shards on every job. Each shard records a digest of that set
(``collection``), so :mod:`mi_assert.report.merge` can refuse shards that collected different
tests.

Shards are numbered from 1 (``1/2`` and ``2/2``, as a CI matrix counts). A shard is empty only
when there are fewer test files than shards; such a run exits with pytest's "no tests" status 5
and says why, unless ``--mi-shard-allow-empty`` lets it pass.

Under pytest-xdist each worker collects and applies the same rule; the plan reaches the
controller in the worker's ``workeroutput``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pytest

from mi_assert.errors import MiAssertInputError

SHARD_FORM = "I/N with integers 1 <= I <= N, e.g. 1/2 (shards count from 1)"
UNIT = "file"
#: the key of the plan in the report's ``meta``, and in an xdist worker's ``workeroutput``
META_KEY = "shard"
_WORKER_KEY = "mi_shard"

SHARD_KEY = pytest.StashKey["Shard"]()
_PLAN_KEY = pytest.StashKey[dict]()
_ALLOW_EMPTY_KEY = pytest.StashKey[bool]()


@dataclass(frozen=True)
class Shard:
    index: int  # 1-based
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def parse_shard(value: Any, source: str = "--mi-shard") -> Shard:
    """``"2/3"`` → ``Shard(2, 3)``; anything else is an error naming ``source`` and the form."""
    text = str(value).strip()
    index_text, sep, count_text = text.partition("/")
    problem = None
    if not sep:
        problem = "no '/'"
    elif not (_is_int(index_text) and _is_int(count_text)):
        problem = "I and N must be integers"
    else:
        index, count = int(index_text), int(count_text)
        if count < 1:
            problem = "N must be at least 1"
        elif index == 0:
            problem = "shards count from 1: the first shard is 1/N"
        elif not 1 <= index <= count:
            problem = f"I must be between 1 and {count}"
    if problem is not None:
        raise MiAssertInputError(f"{source} must be {SHARD_FORM}; got {value!r} ({problem})")
    return Shard(int(index_text), int(count_text))


def _is_int(text: str) -> bool:
    text = text.strip()
    return text.isascii() and text.isdigit()


def unit_of(nodeid: str) -> str:
    """The part of a node id that is never split across shards: its file."""
    return nodeid.split("::", 1)[0]


def assign(sizes: Mapping[str, int], count: int) -> dict[str, int]:
    """Unit → shard index (1-based): largest units first, each to the least-loaded shard."""
    load = [0] * count
    out: dict[str, int] = {}
    for unit in sorted(sizes, key=lambda u: (-sizes[u], u)):
        target = min(range(count), key=lambda k: (load[k], k))
        load[target] += sizes[unit]
        out[unit] = target + 1
    return out


def collection_digest(nodeids: Iterable[str]) -> str:
    """A short digest of a set of node ids (same set → same digest, on any machine)."""
    text = "\n".join(sorted(set(nodeids)))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def split(nodeids: Sequence[str], shard: Shard) -> tuple[list[bool], dict[str, Any]]:
    """Which node ids ``shard`` keeps (in their order), and the plan recorded in the report."""
    sizes: dict[str, int] = {}
    for nodeid in nodeids:
        sizes[unit_of(nodeid)] = sizes.get(unit_of(nodeid), 0) + 1
    owner = assign(sizes, shard.count)
    keep = [owner[unit_of(nodeid)] == shard.index for nodeid in nodeids]
    tests = sorted(n for n, k in zip(nodeids, keep, strict=True) if k)
    plan = {"index": shard.index, "count": shard.count, "unit": UNIT,
            "collected": len(nodeids), "selected": len(tests),
            "files": len(sizes), "selected_files": sum(1 for s in owner.values() if s == shard.index),
            "collection": collection_digest(nodeids), "tests": tests}
    return keep, plan


# ----- pytest glue (called from mi_assert.plugin) ------------------------------------------

def configure(config: pytest.Config) -> None:
    """Check ``--mi-shard`` / ``--mi-shard-allow-empty`` before collection (usage errors)."""
    value = config.getoption("mi_shard", default=None)
    allow_empty = bool(config.getoption("mi_shard_allow_empty", default=False))
    if value is None:
        if allow_empty:
            raise MiAssertInputError("--mi-shard-allow-empty needs --mi-shard I/N")
        return
    shard = parse_shard(value)
    if config.getoption("mi_save_baseline", default=None) or config.getini("mi_save_baseline"):
        raise MiAssertInputError(
            f"--mi-save-baseline cannot be combined with --mi-shard {shard}: each shard holds "
            "only part of the claims; save the baseline from an unsharded run")
    config.stash[SHARD_KEY] = shard
    config.stash[_ALLOW_EMPTY_KEY] = allow_empty


def apply(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Keep this shard's items, report the rest as deselected, remember the plan."""
    shard = config.stash.get(SHARD_KEY, None)
    if shard is None:
        return
    keep, plan = split([item.nodeid for item in items], shard)
    deselected = [item for item, k in zip(items, keep, strict=True) if not k]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = [item for item, k in zip(items, keep, strict=True) if k]
    config.stash[_PLAN_KEY] = plan
    workeroutput = getattr(config, "workeroutput", None)
    if isinstance(workeroutput, dict):
        workeroutput[_WORKER_KEY] = plan


def receive_worker_plan(node: Any) -> None:
    """On the xdist controller: the plan a worker computed (every worker computes the same)."""
    config = getattr(node, "config", None)
    plan = (getattr(node, "workeroutput", None) or {}).get(_WORKER_KEY)
    if config is not None and plan is not None and _PLAN_KEY not in config.stash:
        config.stash[_PLAN_KEY] = plan


def meta(config: pytest.Config) -> dict[str, Any]:
    """``{"shard": plan}`` for the report's meta (just index/count before collection ends)."""
    shard = config.stash.get(SHARD_KEY, None)
    if shard is None:
        return {}
    plan = config.stash.get(_PLAN_KEY, None)
    return {META_KEY: dict(plan) if plan is not None else
            {"index": shard.index, "count": shard.count, "unit": UNIT}}


def finish(config: pytest.Config, session: pytest.Session) -> str | None:
    """The line the summary prints about this shard; lets an empty shard pass when allowed."""
    shard = config.stash.get(SHARD_KEY, None)
    plan = config.stash.get(_PLAN_KEY, None)
    if shard is None or plan is None or not plan["collected"]:
        return None
    if plan["selected"]:
        return (f"--mi-shard {shard}: {plan['selected']} of {plan['collected']} test(s), "
                f"{plan['selected_files']} of {plan['files']} test file(s)")
    why = (f"--mi-shard {shard} selected no tests: the {plan['files']} collected test file(s) "
           f"fill only {plan['files']} of {shard.count} shards (a file is never split)")
    if config.stash.get(_ALLOW_EMPTY_KEY, False):
        if session.exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED:
            session.exitstatus = pytest.ExitCode.OK
        return f"{why}; passing (--mi-shard-allow-empty)"
    return (f"{why}; exit status 5. Use at most {plan['files']} shards, or pass "
            "--mi-shard-allow-empty to let an empty shard pass")
