"""Claim trajectories over the checkpoints of a sweep, and their line-figure spec.

Shared by :mod:`mi_assert.report.json_report` (which stores the trajectories in the report)
and :mod:`mi_assert.report.html` (which draws them).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from mi_assert.report.readout import checkpoint_sort_key, member_units


def trajectories(records: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Each claim's estimate across the checkpoints of a sweep (one series per model series).

    A composite claim has one trajectory per member (``key::member``): its headline is the
    deciding member's, which may be another member, in other units, at another checkpoint.
    """
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for rec in records:
        ck = rec.get("checkpoint")
        if not ck:
            continue
        key = str(rec["key"]).split("#")[0]
        claim = str(rec["evidence"].get("claim"))
        for unit_key, ev in member_units(rec["evidence"], key):
            name = claim if unit_key == key else f"{claim} / {ev.get('claim')}"
            groups.setdefault((unit_key, str(ck.get("series", ""))), []).append(
                {"checkpoint": ck, "evidence": ev, "claim": name})
    out = []
    for (key, series), recs in sorted(groups.items()):
        recs = sorted(recs, key=lambda r: checkpoint_sort_key(
            r["checkpoint"].get("step"), r["checkpoint"].get("order"), r["checkpoint"].get("label")))
        ev0 = recs[0]["evidence"]
        steps = [r["checkpoint"].get("step") for r in recs]
        use_steps = all(s is not None for s in steps)
        out.append({
            "key": key,
            "series": series,
            "claim": recs[0]["claim"],
            "metric": ev0.get("metric"),
            "threshold": ev0.get("threshold"),
            "alternative": ev0.get("alternative"),
            "x_kind": "step" if use_steps else "order",
            "points": [{
                "label": r["checkpoint"].get("label"),
                "spec": r["checkpoint"].get("spec"),
                "x": (r["checkpoint"].get("step") if use_steps else r["checkpoint"].get("order")),
                "estimate": r["evidence"].get("estimate"),
                "low": r["evidence"].get("low"),
                "high": r["evidence"].get("high"),
                "passed": r["evidence"].get("passed"),
            } for r in recs],
        })
    return out


def trajectory_figure(traj: Mapping[str, Any]) -> dict[str, Any]:
    """A trajectory as a ``line`` figure spec (x = step or order; band = interval)."""
    pts = traj["points"]
    return {
        "kind": "line",
        "data": {"x": [p["x"] for p in pts], "y": [p["estimate"] for p in pts],
                 "low": [p["low"] for p in pts], "high": [p["high"] for p in pts],
                 "threshold": traj.get("threshold"),
                 "xticklabels": None if traj["x_kind"] == "step" else [p["label"] for p in pts]},
        "xlabel": "training step" if traj["x_kind"] == "step" else "checkpoint",
        "ylabel": str(traj.get("metric") or "estimate"),
        "title": f"{traj.get('claim')} — {traj.get('series')}",
    }
