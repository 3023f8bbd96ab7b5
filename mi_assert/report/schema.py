"""The JSON shape of a recorded claim, of a report and of a baseline file.

A *record* is one :class:`~mi_assert.stats.evidence.Evidence` made JSON-safe plus where it
came from (test node id, checkpoint of a sweep, worker). Records travel from xdist workers to
the controller as JSON text, so everything here is plain data.

``key`` identifies a claim across runs: the test node id with the checkpoint parameter removed
(``test``) plus the claim text (plus ``#k`` when one test makes the same claim more than once).
A composite claim's members are identified by ``key::member claim``
(:func:`~mi_assert.report.readout.member_units`).

Schema versions: 1 = evidence without members' own keys, units or summaries (mi-assert before
the claims engine rewrite); 2 = evidence ``schema_version`` 2 (``unit``, ``reason``,
``deciding``, ``composite``, ``envelope``, ``summary``, full members in ``family``) and
baseline records that carry every member of a composite claim.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from mi_assert.errors import MiAssertInputError

#: version of the report/baseline JSON layout (bump on incompatible change)
REPORT_SCHEMA_VERSION = 2
REPORT_KIND = "mi-assert-report"
BASELINE_KIND = "mi-assert-baseline"
#: keys whose values change from run to run (timings, hosts, workers): ignored when comparing
VOLATILE_KEYS = frozenset({"created", "duration_s", "elapsed_s", "wall_s", "worker", "workers",
                           "host", "pid", "complete", "argv", "cost"})


def strip_param(nodeid: str, param_id: str | None) -> str:
    """``test_x[ckpt-a-seed0]`` without the ``ckpt-a`` component → ``test_x[seed0]``."""
    if not param_id or not nodeid.endswith("]") or "[" not in nodeid:
        return nodeid
    head, _, inner = nodeid[:-1].partition("[")
    if inner == param_id:
        return head
    parts = inner.split("-")
    pid_parts = param_id.split("-")
    for i in range(len(parts) - len(pid_parts) + 1):
        if parts[i:i + len(pid_parts)] == pid_parts:
            rest = parts[:i] + parts[i + len(pid_parts):]
            return f"{head}[{'-'.join(rest)}]" if rest else head
    return nodeid


def make_record(evidence_dict: Mapping[str, Any], context: Mapping[str, Any],
                figures: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """One record: evidence + provenance. ``figures`` must already be JSON-safe."""
    nodeid = str(context.get("nodeid") or "<outside a test>")
    sweep = context.get("checkpoint")
    param_id = sweep.get("param_id") if isinstance(sweep, Mapping) else None
    claim = str(evidence_dict.get("claim", ""))
    test = strip_param(nodeid, param_id)
    return {
        "key": f"{test}::{claim}",
        "test": test,
        "nodeid": nodeid,
        "checkpoint": dict(sweep) if isinstance(sweep, Mapping) else None,
        "worker": context.get("worker"),
        "evidence": dict(evidence_dict),
        "figures": dict(figures or {}),
    }


def dedupe_keys(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Give repeated (key, checkpoint) pairs within one run a ``#k`` suffix (in record order)."""
    seen: dict[tuple[str, str, str], int] = {}
    for rec in records:
        slot = (rec["key"], _checkpoint_series(rec), _checkpoint_label(rec))
        count = seen.get(slot, 0)
        seen[slot] = count + 1
        if count:
            rec["key"] = f"{rec['key']}#{count + 1}"
    return records


def _checkpoint_series(rec: Mapping[str, Any]) -> str:
    ck = rec.get("checkpoint") or {}
    return str(ck.get("series", "") or "") if isinstance(ck, Mapping) else ""


def _checkpoint_label(rec: Mapping[str, Any]) -> str:
    ck = rec.get("checkpoint") or {}
    return str(ck.get("label", "")) if isinstance(ck, Mapping) else ""


def sort_key(rec: Mapping[str, Any]) -> tuple[Any, ...]:
    """Test (without checkpoint), then checkpoint order (step100 before step1000), then claim."""
    ev = rec.get("evidence", {})
    ck = rec.get("checkpoint") or {}
    nodeid = str(rec.get("nodeid", ""))
    return (strip_param(nodeid, ck.get("param_id")), str(ck.get("series", "")),
            int(ck.get("order", 0) or 0), nodeid, int(rec.get("seq", 0) or 0),
            str(ev.get("claim", "")), json.dumps(ev, sort_keys=True, default=str))


def sort_records(records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Records in a run-independent order (node id, claim), so serial and ``-n N`` agree."""
    return sorted(records, key=sort_key)


def strip_volatile(obj: Any) -> Any:
    """A copy without timing/host/worker keys: what must agree between equivalent runs."""
    if isinstance(obj, Mapping):
        return {k: strip_volatile(v) for k, v in obj.items() if k not in VOLATILE_KEYS}
    if isinstance(obj, list):
        return [strip_volatile(v) for v in obj]
    return obj


def _redo_hint(kind: str) -> str:
    if kind == BASELINE_KIND:
        return "re-create it with --mi-save-baseline NAME --mi-baseline-overwrite"
    return "re-create it with --mi-report DIR"


def check_document(doc: Any, kind: str, source: str,
                   versions: Iterable[int] = (REPORT_SCHEMA_VERSION,)) -> dict[str, Any]:
    """Validate the envelope of a report/baseline document; clear errors naming the file.

    ``versions``: the schema versions the caller reads (baselines: only the current one).
    """
    if not isinstance(doc, dict):
        raise MiAssertInputError(f"{source}: expected a JSON object ({kind}), got {type(doc).__name__}")
    if doc.get("kind") != kind:
        raise MiAssertInputError(
            f"{source}: not an {kind} file (its 'kind' is {doc.get('kind')!r}); "
            f"expected kind {kind!r}")
    version = doc.get("schema_version")
    readable = sorted(set(versions))
    if version not in readable:
        reads = ", ".join(str(v) for v in readable)
        why = ""
        if isinstance(version, int) and not isinstance(version, bool) and version < min(readable):
            why = (" (it was written by an older mi-assert, before composite claims stored "
                   "each member with its own numbers)")
        raise MiAssertInputError(
            f"{source}: schema_version {version!r} is not supported by this mi-assert "
            f"(it reads version {reads}){why}; {_redo_hint(kind)}")
    records = doc.get("records")
    if not isinstance(records, list):
        raise MiAssertInputError(f"{source}: 'records' must be a list")
    for i, rec in enumerate(records):
        if kind == BASELINE_KIND:
            _check_baseline_record(rec, f"{source}: record {i}")
        elif not isinstance(rec, dict) or "key" not in rec or not isinstance(rec.get("evidence"), dict):
            raise MiAssertInputError(f"{source}: record {i} lacks 'key' or 'evidence'")
    return doc


_BASELINE_REQUIRED = ("key", "claim", "metric", "estimate", "low", "high", "threshold",
                      "alternative")


def _check_baseline_record(rec: Any, where: str) -> None:
    missing = [f for f in _BASELINE_REQUIRED if not isinstance(rec, dict) or f not in rec]
    if missing:
        raise MiAssertInputError(f"{where} lacks field(s) {', '.join(missing)}")
    if rec["alternative"] not in ("greater", "less"):
        raise MiAssertInputError(f"{where} has alternative {rec['alternative']!r}; "
                                 "allowed: 'greater', 'less'")
    family = rec.get("members", [])
    if not isinstance(family, list):
        raise MiAssertInputError(f"{where}: 'members' must be a list")
    for j, member in enumerate(family):
        if isinstance(member, dict):
            member = {"key": rec["key"], **member}
        _check_baseline_record(member, f"{where}, member {j}")
