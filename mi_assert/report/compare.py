"""Compare a run against a baseline, claim by claim and member by member, with per-metric
tolerances.

**Identity.** A row is one claim with its own numbers: a single claim, or one member of a
composite claim (an SAE's explained variance *and* its L0). Its key is the record's ``key``
(test id without the checkpoint parameter ``::`` claim) plus ``::member claim`` for a member,
and rows are matched by ``(key, checkpoint series, checkpoint label)``. So a member that fell
is seen even when the composite's headline (its deciding member) is another member.

**The judgement** is statistical, using the new run's interval against the baseline's
estimate, on the side that can show the claim got worse:

* ``greater`` claims (bigger is better): REGRESSED when the new interval's *upper* end lies
  below ``baseline - tolerance`` (even the most favourable reading fell); improved when its
  lower end lies above ``baseline + tolerance``.
* ``less`` claims (smaller is better), mirrored: REGRESSED when the new interval's *lower* end
  lies above ``baseline + tolerance`` (even the most favourable reading rose); improved when
  its upper end lies below ``baseline - tolerance``.
* otherwise ``ok``; rows only in the run are ``new``, only in the baseline ``missing``. A row
  whose verdict changed says so in its note (``verdict PASS->FAIL``).

A baseline recorded on another model (different spec) is compared but flagged (``OTHER
MODEL``) and listed in ``warnings``; different weights under the same spec are the normal case
(the model was retrained) and noted as ``weights changed``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from mi_assert.errors import MiAssertInputError
from mi_assert.report.readout import (
    checkpoint_sort_key,
    fmt,
    member_units,
    natural_key,
    verdict,
)

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
    """REGRESSED / improved / ok for one row (see the module docstring)."""
    return judge_with_rule(base_estimate, low, high, alternative, tol)[0]


def judge_with_rule(base_estimate: float, low: float, high: float, alternative: str,
                    tol: float) -> tuple[str, str]:
    """The status and the comparison that decided it, e.g. ``high 0.750 < baseline 0.800 - 0``."""
    lo_edge, hi_edge = base_estimate - tol, base_estimate + tol
    tol_s = f"{tol:g}"
    if alternative == "less":
        if low > hi_edge:
            return "REGRESSED", f"low {fmt(low)} > baseline {fmt(base_estimate)} + {tol_s}"
        if high < lo_edge:
            return "improved", f"high {fmt(high)} < baseline {fmt(base_estimate)} - {tol_s}"
    else:
        if high < lo_edge:
            return "REGRESSED", f"high {fmt(high)} < baseline {fmt(base_estimate)} - {tol_s}"
        if low > hi_edge:
            return "improved", f"low {fmt(low)} > baseline {fmt(base_estimate)} + {tol_s}"
    return "ok", f"[{fmt(low)}, {fmt(high)}] reaches baseline {fmt(base_estimate)} ± {tol_s}"


def _checkpoint(rec: Mapping[str, Any]) -> dict[str, Any]:
    ck = rec.get("checkpoint")
    if isinstance(ck, Mapping):
        return {"label": ck.get("label"), "series": ck.get("series"), "step": ck.get("step"),
                "order": ck.get("order")}
    return {"label": rec.get("checkpoint_label"), "series": rec.get("checkpoint_series"),
            "step": rec.get("checkpoint_step"), "order": rec.get("checkpoint_order")}


def _test_of(rec: Mapping[str, Any], claim: str) -> str:
    if rec.get("test"):
        return str(rec["test"])
    key = str(rec["key"]).split("#")[0]
    suffix = f"::{claim}"
    return key[: -len(suffix)] if key.endswith(suffix) else key


def _as_evidence(rec: Mapping[str, Any]) -> Mapping[str, Any]:
    """A run record's evidence, or a baseline record (flat, members under ``members``)."""
    if isinstance(rec.get("evidence"), Mapping):
        return rec["evidence"]
    return _baseline_evidence(rec)


def _baseline_evidence(rec: Mapping[str, Any]) -> dict[str, Any]:
    ev = dict(rec)
    ev["family"] = [_baseline_evidence(m) for m in rec.get("members") or []]
    return ev


def units(rec: Mapping[str, Any]) -> Iterator[tuple[tuple[str, str, str], dict[str, Any]]]:
    """One ``(slot, row fields)`` per claim with its own numbers in a run or baseline record."""
    ev = _as_evidence(rec)
    ck = _checkpoint(rec)
    claim = str(ev.get("claim"))
    model = ev.get("model") or rec.get("model") or {}
    test = _test_of(rec, claim)
    for key, unit in member_units(ev, str(rec["key"])):
        slot = (key, "" if ck["series"] is None else str(ck["series"]),
                "" if ck["label"] is None else str(ck["label"]))
        yield slot, {
            "key": key, "test": test, "claim": claim,
            "member": None if unit is ev else str(unit.get("claim")),
            "checkpoint": ck, "metric": unit.get("metric"), "estimate": unit.get("estimate"),
            "low": unit.get("low"), "high": unit.get("high"),
            "threshold": unit.get("threshold"), "alternative": unit.get("alternative"),
            "passed": bool(unit.get("passed")), "reason": unit.get("reason") or "",
            "model": {"spec": model.get("spec"), "checkpoint": model.get("checkpoint")},
        }


def _index(records: Sequence[Mapping[str, Any]]) -> dict[tuple[str, str, str], dict[str, Any]]:
    out: dict[tuple[str, str, str], dict[str, Any]] = {}
    for rec in records:
        for slot, unit in units(rec):
            k = 1
            while slot in out:  # the same claim made twice: keep both, in record order
                k += 1
                slot = (f"{unit['key']}#{k}", slot[1], slot[2])
            out[slot] = unit
    return out


def compare(baseline: Sequence[Mapping[str, Any]], run: Sequence[Mapping[str, Any]],
            tolerances: Mapping[str, float] | None = None, name: str = "") -> dict[str, Any]:
    """The comparison as plain data: ``rows`` (one per claim or member), ``counts``, ``warnings``."""
    tolerances = dict(tolerances or {})
    base, new = _index(baseline), _index(run)
    rows: list[dict[str, Any]] = []
    warnings: set[str] = set()
    for slot in set(base) | set(new):
        b, n = base.get(slot), new.get(slot)
        ref = n or b
        assert ref is not None
        ck = ref["checkpoint"]
        row: dict[str, Any] = {
            "key": slot[0], "test": ref["test"], "claim": ref["claim"], "member": ref["member"],
            "checkpoint": slot[2] or None, "series": slot[1] or None,
            "checkpoint_step": ck["step"], "checkpoint_order": ck["order"],
            "metric": ref["metric"], "alternative": ref["alternative"],
            "tolerance": tolerance_for(str(ref["metric"]), tolerances),
            "baseline": b and b["estimate"], "new": n and n["estimate"],
            "baseline_low": b and b["low"], "baseline_high": b and b["high"],
            "baseline_threshold": b and b["threshold"],
            "low": n and n["low"], "high": n and n["high"], "delta": None,
            "baseline_verdict": b and verdict(b), "new_verdict": n and verdict(n),
            "rule": "", "note": ""}
        if b is None:
            row["status"] = "new"
        elif n is None:
            row["status"] = "missing"
        elif None in (b["estimate"], n["estimate"], n["low"], n["high"]):
            both = b["estimate"] is None and n["estimate"] is None
            row["status"] = "ok" if both else "REGRESSED"
            row["note"] = ("non-finite in baseline and run" if both else "non-finite value") + (
                f" ({n['reason']})" if n["reason"] else "")
            if b["passed"] and not n["passed"]:
                row["note"] += ", verdict PASS->FAIL"
        else:
            row["delta"] = n["estimate"] - b["estimate"]
            row["status"], row["rule"] = judge_with_rule(
                b["estimate"], n["low"], n["high"], str(n["alternative"]), row["tolerance"])
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
            elif not b["passed"] and n["passed"]:
                notes.append("verdict FAIL->PASS")
            row["note"] = ", ".join(notes)
        rows.append(row)
    series: dict[str, set[str]] = {}
    for row in rows:
        series.setdefault(row["key"], set()).add(str(row["series"] or ""))
    for row in rows:
        several = len(series[row["key"]]) > 1 and row["series"]
        row["where"] = (f"{row['series']}:{row['checkpoint']}" if several else row["checkpoint"])
    rows.sort(key=row_sort_key)
    counts = {s: sum(1 for r in rows if r["status"] == s) for s in STATUSES}
    return {"baseline": name, "tolerances": tolerances, "rows": rows, "counts": counts,
            "warnings": sorted(warnings)}


def row_sort_key(row: Mapping[str, Any]) -> tuple[Any, ...]:
    """Test, claim, member, then checkpoints in training order (``step200`` before ``step1000``)."""
    return (natural_key(row.get("test")), str(row.get("claim")), natural_key(row.get("key")),
            str(row.get("series") or ""),
            checkpoint_sort_key(row.get("checkpoint_step"), row.get("checkpoint_order"),
                                row.get("checkpoint")))


def _f(value: Any, signed: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:+.3f}" if signed else f"{value:.3f}"


def row_claim(row: Mapping[str, Any]) -> str:
    """``claim [member] @checkpoint`` as the diff table prints it."""
    text = str(row["claim"])
    if row.get("member"):
        text += f" / member: {row['member']}"
    where = row.get("where", row.get("checkpoint"))
    if where:
        text += f" @{where}"
    return text


def row_verdict(row: Mapping[str, Any]) -> str:
    b, n = row.get("baseline_verdict"), row.get("new_verdict")
    if b and n and b != n:
        return f"{b}->{n}"
    return str(n or b or "-")


def format_table(comparison: Mapping[str, Any]) -> list[str]:
    """The diff table, regressions first, in the style of pytest-benchmark's compare."""
    order = {s: i for i, s in enumerate(STATUSES)}
    rows = sorted(comparison["rows"], key=lambda r: (order[r["status"]], row_sort_key(r)))
    table = [("status", "test", "claim", "baseline", "new [interval]", "delta", "tol", "verdict",
              "note")]
    for r in rows:
        new = "-" if r["new"] is None else f"{_f(r['new'])} [{_f(r['low'])}, {_f(r['high'])}]"
        table.append((r["status"], str(r.get("test") or ""), row_claim(r), _f(r["baseline"]), new,
                      _f(r["delta"], True), f"{r['tolerance']:g}", row_verdict(r), r["note"]))
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)).rstrip() for row in table]
    counts = comparison["counts"]
    lines.append(", ".join(f"{counts[s]} {s}" for s in STATUSES if counts[s]) or "no claims")
    for w in comparison.get("warnings", []):
        lines.append(f"WARNING: {w}")
    return lines
