"""Compare a run against a baseline, claim by claim, with per-metric tolerances.

Claims are matched by ``(key, checkpoint label)``; ``key`` is the test node id without the
checkpoint parameter plus the claim text. The judgement is statistical, using the new run's
interval against the baseline's estimate:

* ``greater`` claims: REGRESSED when the new interval's upper end lies below
  ``baseline - tolerance``; improved when its lower end lies above ``baseline + tolerance``.
* ``less`` claims: mirrored.
* otherwise ``ok``; claims only in the run are ``new``, only in the baseline ``missing``.

A baseline recorded on another model (different spec) is compared but flagged (``OTHER
MODEL``) and listed in ``warnings``; different weights under the same spec are the normal case
(the model was retrained) and noted as ``weights changed``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from mi_assert.errors import MiAssertInputError

STATUSES = ("REGRESSED", "improved", "ok", "new", "missing")
DEFAULT = "*"


def normalize_metric(name: str) -> str:
    return "_".join(str(name).lower().replace("-", " ").split())


def parse_tolerances(items: Iterable[str]) -> dict[str, float]:
    """``["recovery:0.05", "induction_score:0.1", "0.02"]`` → metric → tolerance (``*``: default)."""
    out: dict[str, float] = {}
    for item in items:
        for part in str(item).replace(",", " ").split():
            metric, sep, value = part.rpartition(":")
            if not sep:
                metric, value = DEFAULT, part
            try:
                tol = float(value)
            except ValueError as exc:
                raise MiAssertInputError(
                    f"tolerance {part!r} not understood: use METRIC:VALUE (e.g. recovery:0.05) "
                    "or a bare VALUE for every metric") from exc
            if not tol >= 0:
                raise MiAssertInputError(f"tolerance {part!r} must be a number >= 0")
            out[normalize_metric(metric) if metric != DEFAULT else DEFAULT] = tol
    return out


def tolerance_for(metric: str, tolerances: Mapping[str, float]) -> float:
    return tolerances.get(normalize_metric(metric), tolerances.get(DEFAULT, 0.0))


def judge(base_estimate: float, low: float, high: float, alternative: str, tol: float) -> str:
    if alternative == "less":
        if low > base_estimate + tol:
            return "REGRESSED"
        if high < base_estimate - tol:
            return "improved"
        return "ok"
    if high < base_estimate - tol:
        return "REGRESSED"
    if low > base_estimate + tol:
        return "improved"
    return "ok"


def _slot(rec: Mapping[str, Any]) -> tuple[str, str]:
    label = rec.get("checkpoint_label")
    if label is None and isinstance(rec.get("checkpoint"), Mapping):
        label = rec["checkpoint"].get("label")
    return (str(rec["key"]), "" if label is None else str(label))


def _flat(rec: Mapping[str, Any]) -> dict[str, Any]:
    """A run record (with ``evidence``) or a baseline record (already flat) → flat fields."""
    ev = rec.get("evidence", rec)
    model = ev.get("model") or rec.get("model") or {}
    return {"claim": ev.get("claim"), "metric": ev.get("metric"), "estimate": ev.get("estimate"),
            "low": ev.get("low"), "high": ev.get("high"), "threshold": ev.get("threshold"),
            "alternative": ev.get("alternative"), "passed": ev.get("passed"),
            "model": {"spec": model.get("spec"), "checkpoint": model.get("checkpoint")}}


def compare(baseline: Sequence[Mapping[str, Any]], run: Sequence[Mapping[str, Any]],
            tolerances: Mapping[str, float] | None = None, name: str = "") -> dict[str, Any]:
    """The comparison as plain data: ``rows`` (one per claim), ``counts``, ``warnings``."""
    tolerances = dict(tolerances or {})
    base = {_slot(r): _flat(r) for r in baseline}
    new = {_slot(r): _flat(r) for r in run}
    rows: list[dict[str, Any]] = []
    warnings: set[str] = set()
    for slot in sorted(set(base) | set(new)):
        b, n = base.get(slot), new.get(slot)
        ref = n or b
        assert ref is not None
        row: dict[str, Any] = {"key": slot[0], "checkpoint": slot[1] or None, "claim": ref["claim"],
                               "metric": ref["metric"], "alternative": ref["alternative"],
                               "tolerance": tolerance_for(str(ref["metric"]), tolerances),
                               "baseline": b and b["estimate"], "new": n and n["estimate"],
                               "low": n and n["low"], "high": n and n["high"], "delta": None,
                               "note": ""}
        if b is None:
            row["status"] = "new"
        elif n is None:
            row["status"] = "missing"
        elif None in (b["estimate"], n["estimate"], n["low"], n["high"]):
            row["status"] = "REGRESSED"
            row["note"] = "non-finite value"
        else:
            row["delta"] = n["estimate"] - b["estimate"]
            row["status"] = judge(b["estimate"], n["low"], n["high"], str(n["alternative"]),
                                  row["tolerance"])
            notes = []
            if b["model"]["spec"] != n["model"]["spec"]:
                notes.append("OTHER MODEL")
                warnings.add(f"baseline {name!r} was recorded on model {b['model']['spec']!r} "
                             f"(checkpoint {b['model']['checkpoint']}); this run used "
                             f"{n['model']['spec']!r} (checkpoint {n['model']['checkpoint']})")
            elif b["model"]["checkpoint"] != n["model"]["checkpoint"]:
                notes.append("weights changed")
            if b["threshold"] != n["threshold"] or b["alternative"] != n["alternative"]:
                notes.append("threshold changed")
            if b["passed"] and not n["passed"]:
                notes.append("verdict PASS->FAIL")
            row["note"] = ", ".join(notes)
        rows.append(row)
    counts = {s: sum(1 for r in rows if r["status"] == s) for s in STATUSES}
    return {"baseline": name, "tolerances": tolerances, "rows": rows, "counts": counts,
            "warnings": sorted(warnings)}


def _f(value: Any, signed: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:+.3f}" if signed else f"{value:.3f}"


def format_table(comparison: Mapping[str, Any]) -> list[str]:
    """The diff table, regressions first, in the style of pytest-benchmark's compare."""
    order = {s: i for i, s in enumerate(STATUSES)}
    rows = sorted(comparison["rows"], key=lambda r: (order[r["status"]], r["key"], str(r["checkpoint"])))
    table = [("status", "claim", "baseline", "new [interval]", "delta", "tol", "note")]
    for r in rows:
        claim = str(r["claim"]) + (f" @{r['checkpoint']}" if r["checkpoint"] else "")
        new = "-" if r["new"] is None else f"{_f(r['new'])} [{_f(r['low'])}, {_f(r['high'])}]"
        table.append((r["status"], claim, _f(r["baseline"]), new, _f(r["delta"], True),
                      f"{r['tolerance']:g}", r["note"]))
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)).rstrip() for row in table]
    counts = comparison["counts"]
    lines.append(", ".join(f"{counts[s]} {s}" for s in STATUSES if counts[s]) or "no claims")
    for w in comparison.get("warnings", []):
        lines.append(f"WARNING: {w}")
    return lines
