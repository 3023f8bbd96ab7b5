"""Turn what assertions recorded (:mod:`mi_assert.record`) into report records.

Runs where the evidence was made (an xdist worker or the only process); the result is plain
data that pytest can ship to the controller on the test report.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from mi_assert.report.figures import figures_to_plain
from mi_assert.report.readout import members, relation, summary, verdict
from mi_assert.report.schema import make_record


def to_records(recorded: Iterable[Any],
               fallback_model: Callable[[], Mapping[str, Any] | None] | None = None) -> list[dict[str, Any]]:
    """``Recorded`` objects → record dicts; evidence without ``model`` gets ``fallback_model()``."""
    out = []
    for rec in recorded:
        ev = rec.evidence.to_dict()
        if not ev.get("model") and fallback_model is not None:
            model = fallback_model()
            if model:
                ev["model"] = dict(model)
        record = make_record(ev, rec.context, figures_to_plain(getattr(rec.evidence, "figures", {})))
        if getattr(rec, "cost", None):
            record["cost"] = dict(rec.cost)
        out.append(record)
    return out


_JUNIT_FIELDS = ("metric", "estimate", "low", "high", "bound", "threshold", "alternative", "n",
                 "unit")


def _evidence_properties(prefix: str, ev: Mapping[str, Any]) -> list[tuple[str, str]]:
    props = [(f"{prefix}.claim", str(ev.get("claim")))]
    props += [(f"{prefix}.{name}", str(ev.get(name))) for name in _JUNIT_FIELDS]
    props += [(f"{prefix}.verdict", verdict(ev)), (f"{prefix}.comparison", relation(ev)),
              (f"{prefix}.summary", summary(ev))]
    if ev.get("reason"):
        props.append((f"{prefix}.reason", str(ev["reason"])))
    return props


def junit_properties(records: Iterable[Mapping[str, Any]]) -> list[tuple[str, str]]:
    """Key figures of each claim as junit-xml ``<property>`` pairs (``mi.K.estimate`` ...);
    ``mi.K.comparison`` is the bound-vs-threshold relation that holds, ``mi.K.summary`` the
    evidence's one-line verdict, ``mi.K.member.J.*`` each member of a composite claim."""
    props: list[tuple[str, str]] = []
    for k, rec in enumerate(records):
        ev = rec["evidence"]
        props += _evidence_properties(f"mi.{k}", ev)
        if members(ev):
            props.append((f"mi.{k}.deciding", str(ev.get("deciding"))))
            for j, member in enumerate(members(ev)):
                props += _evidence_properties(f"mi.{k}.member.{j}", member)
        model = ev.get("model") or {}
        if model:
            props.append((f"mi.{k}.model", f"{model.get('spec')}#{model.get('checkpoint')}"))
        if rec.get("checkpoint"):
            props.append((f"mi.{k}.checkpoint", str(rec["checkpoint"].get("label"))))
    return props


#: the phases of an ordinary test report; pytest-xdist reports a crashed worker's test as
#: failed in phase "???"
_TEST_PHASES = ("setup", "call", "teardown")


def crash_entry(report: Any) -> dict[str, Any] | None:
    """The report entry of a test whose process died while running it, else None.

    pytest-xdist reports such a test (its worker killed by a signal, out of memory, a segfault)
    as failed with the message ``worker 'gw0' crashed while running '<node id>'``; the claims
    that test had recorded died with the worker, so the report lists the test on its own.
    """
    if not getattr(report, "failed", False) or getattr(report, "when", None) in _TEST_PHASES:
        return None
    message = str(getattr(report, "longrepr", "") or "")
    if "crashed" not in message:
        return None
    gateway = getattr(getattr(report, "node", None), "gateway", None)
    return {"nodeid": str(report.nodeid), "worker": getattr(gateway, "id", None),
            "outcome": "crashed", "message": message}
