"""Figures as the compact data the HTML report draws in the browser.

``report.json`` keeps every figure's full data. The HTML page carries a reduced copy that is
enough to draw and to hover: numbers rounded to 4 significant digits, histograms binned here
(counts per bin, not every sample), at most :data:`MAX_PATTERN_EXAMPLES` attention examples,
feature dashboards capped (:func:`feature_dashboard`: contexts, window widths, table rows).
That is what keeps the main job's page small while every picture stays interactive.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

#: attention examples kept per pattern figure in the page (report.json keeps them all)
MAX_PATTERN_EXAMPLES = 4
#: a pattern wider than this is drawn as a heatmap without per-token labels
MAX_PATTERN_TOKENS = 96
MAX_BINS = 30
SIGNIFICANT = 4
#: feature dashboards in the page: top contexts, quantile bands and examples per band, tokens
#: per context window, rows per logit table, characters per token string
MAX_DASHBOARD_CONTEXTS = 20
MAX_DASHBOARD_GROUPS = 5
MAX_GROUP_CONTEXTS = 3
MAX_WINDOW_TOKENS = 32
MAX_LOGIT_ROWS = 12
MAX_TOKEN_CHARS = 32


def rounded(value: Any) -> Any:
    """Floats to :data:`SIGNIFICANT` significant digits, recursively; non-finite → None."""
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        return float(f"{value:.{SIGNIFICANT}g}")
    if isinstance(value, Mapping):
        return {str(k): rounded(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [rounded(v) for v in value]
    return value


def _rows(data: Any) -> list[list[float]]:
    rows = data if isinstance(data, list) and data and isinstance(data[0], list) else [data or []]
    return [[float(v) for v in row if isinstance(v, (int, float)) and not isinstance(v, bool)
             and math.isfinite(v)] for row in rows]


def binned(spec: Mapping[str, Any]) -> dict[str, Any]:
    """A ``hist`` spec as shared bin edges and one count list per row (bins span every row and
    the threshold, so rows compare and the threshold line falls inside the axis)."""
    rows = _rows(spec.get("data"))
    pooled = [v for row in rows for v in row]
    threshold = spec.get("threshold")
    ends = pooled + ([float(threshold)] if isinstance(threshold, (int, float)) else [])
    lo, hi = (min(ends), max(ends)) if ends else (0.0, 1.0)
    pad = max(hi - lo, 1e-6) * 0.02
    lo, hi = lo - pad, hi + pad
    n_bins = min(MAX_BINS, max(8, 2 * int(math.sqrt(max(len(pooled), 1)))))
    width = (hi - lo) / n_bins
    counts = []
    for row in rows:
        c = [0] * n_bins
        for v in row:
            c[min(n_bins - 1, max(0, int((v - lo) / width)))] += 1
        counts.append(c)
    labels = spec.get("labels") or ([f"seed {i}" for i in range(len(rows))] if len(rows) > 1 else [""])
    return {"kind": "hist", "edges": rounded([lo + i * width for i in range(n_bins + 1)]),
            "counts": counts, "labels": [str(label) for label in labels][:len(rows)],
            "n": [len(r) for r in rows], "threshold": rounded(threshold)}


def _pattern(spec: Mapping[str, Any]) -> dict[str, Any]:
    data: Any = spec.get("data") or []
    depth = _depth(data)
    if depth not in (2, 3):
        raise ValueError(f"pattern data must be [q, k] or [examples, q, k], got {depth}-d")
    examples: list[Any] = (data if depth == 3 else [data])[:MAX_PATTERN_EXAMPLES]
    tokens = spec.get("tokens")
    if tokens and isinstance(tokens[0], list):
        token_rows = [[str(t) for t in row] for row in tokens[:len(examples)]]
    elif tokens:
        token_rows = [[str(t) for t in tokens]] * len(examples)
    else:
        token_rows = []
    labels = spec.get("labels") or []
    size = max((len(ex) for ex in examples), default=0)
    return {"kind": "pattern", "data": [[[round(float(v), 3) if v is not None else 0.0 for v in q]
                                         for q in ex] for ex in examples],
            "tokens": token_rows if size <= MAX_PATTERN_TOKENS else [],
            "labels": [str(label) for label in labels][:len(examples)]}


def _token(value: Any) -> str:
    text = str(value)
    return text if len(text) <= MAX_TOKEN_CHARS else text[:MAX_TOKEN_CHARS - 1] + "…"


def _act(value: Any) -> Any:
    """An activation for the page: None stays (not counted), zero as 0, else 4 digits."""
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return 0 if value == 0 else rounded(float(value))


def _context(ctx: Mapping[str, Any]) -> dict[str, Any]:
    tokens = list(ctx.get("tokens") or [])
    acts = list(ctx.get("acts") or [])
    focus = int(ctx.get("focus") or 0)
    n = min(len(tokens), len(acts))
    lo = max(0, min(focus - MAX_WINDOW_TOKENS // 2, n - MAX_WINDOW_TOKENS))  # keep the focus inside
    hi = min(n, lo + MAX_WINDOW_TOKENS)
    return {"t": [_token(t) for t in tokens[lo:hi]], "a": [_act(a) for a in acts[lo:hi]],
            "f": focus - lo, "v": _act(ctx.get("activation")), "p": ctx.get("prompt"),
            "i": ctx.get("position")}


def _hist_bins(edges: list[float], counts: list[int]) -> tuple[list[float], list[int]]:
    """At most :data:`MAX_BINS` bins: adjacent bins merged."""
    step = max(1, math.ceil(len(counts) / MAX_BINS))
    if step == 1:
        return edges, counts
    merged = [sum(counts[i:i + step]) for i in range(0, len(counts), step)]
    return [edges[i] for i in range(0, len(counts), step)] + [edges[-1]], merged


def feature_dashboard(spec: Mapping[str, Any]) -> dict[str, Any]:
    """A ``feature_dashboard`` spec (:meth:`mi_assert.sae.dashboard.FeatureDashboard.figure`)
    as the page draws it: contexts as ``{t: tokens, a: activations, f: focus index, v: the
    focus's activation, p: prompt, i: position}``, the histogram as a ``hist`` figure, the
    logit tables as ``[token, value]`` rows; values rounded, sizes capped."""
    data = spec["data"]
    if not isinstance(data, Mapping):
        raise ValueError("feature_dashboard data must be a mapping")
    hist = data.get("histogram") or {}
    edges = [float(e) for e in hist.get("edges") or []]
    counts = [int(c) for c in hist.get("counts") or []]
    if len(edges) != len(counts) + 1 or not counts:
        raise ValueError("feature_dashboard histogram needs edges (n_bins + 1) and counts")
    edges, counts = _hist_bins(edges, counts)
    groups = []
    for group in list(data.get("quantile_groups") or [])[:MAX_DASHBOARD_GROUPS]:
        groups.append({"label": str(group.get("label") or ""), "low": rounded(group.get("low")),
                       "high": rounded(group.get("high")),
                       "contexts": [_context(c) for c in list(group.get("contexts") or [])[:MAX_GROUP_CONTEXTS]]})

    def table(rows: Any) -> list[list[Any]]:
        return [[_token(r[0]), rounded(float(r[1]))] for r in list(rows or [])[:MAX_LOGIT_ROWS]]

    return {"kind": "feature_dashboard", "feature": data.get("feature"), "hook": str(data.get("hook")),
            "n_prompts": data.get("n_prompts"), "n_tokens": data.get("n_tokens"),
            "n_firing": data.get("n_firing"), "density": rounded(data.get("density")),
            "max": rounded(data.get("max_activation")),
            "sources": {str(k): v for k, v in (data.get("sources") or {}).items()},
            "token_ids": bool(data.get("token_ids")),
            "contexts": [_context(c) for c in list(data.get("contexts") or [])[:MAX_DASHBOARD_CONTEXTS]],
            "groups": groups,
            "hist": {"kind": "hist", "edges": rounded(edges), "counts": [counts], "labels": [""],
                     "n": [sum(counts)], "threshold": None,
                     "xlabel": f"latent {data.get('feature')} activation (firing tokens)"},
            "boosted": table(data.get("boosted")), "suppressed": table(data.get("suppressed")),
            "logit_path": str(data.get("logit_path") or ""), "logit_note": str(data.get("logit_note") or "")}


def _depth(value: Any) -> int:
    depth = 0
    while isinstance(value, list) and value:
        depth += 1
        value = value[0]
    return depth


def browser_figure(spec: Mapping[str, Any]) -> dict[str, Any]:
    """One stored figure spec as the page draws it (``error`` when it cannot be drawn)."""
    kind = spec.get("kind")
    common = {k: str(spec[k]) for k in ("title", "xlabel", "ylabel") if spec.get(k) is not None}
    if spec.get("error") or spec.get("data") is None and kind != "circuit":
        return {"kind": "error", "error": str(spec.get("error") or "figure has no data"), **common}
    if kind == "hist":
        return {**binned(spec), **common}
    if kind == "pattern":
        try:
            return {**_pattern(spec), **common}
        except ValueError as exc:
            return {"kind": "error", "error": str(exc), **common}
    if kind == "feature_dashboard":
        try:
            return {**feature_dashboard(spec), **common}
        except (ValueError, TypeError, KeyError, IndexError) as exc:
            return {"kind": "error", "error": f"feature dashboard: {exc}", **common}
    if kind == "heatmap":
        depth = _depth(spec["data"])
        if depth not in (1, 2):
            return {"kind": "error", "error": f"heatmap data must be 1-d or 2-d, got {depth}-d", **common}
        out = {"kind": "heatmap", "data": rounded(spec["data"]), **common}
        for key in ("xticklabels", "yticklabels"):
            if spec.get(key):
                out[key] = [str(s) for s in spec[key]]
        return out
    if kind == "line":
        return {"kind": "line", "data": rounded(spec["data"]), "threshold": rounded(spec.get("threshold")),
                **common}
    return {"kind": "error", "error": f"the page cannot draw figure kind {kind!r}", **common}


def forest(evidence: Mapping[str, Any]) -> dict[str, Any] | None:
    """Per-seed rows (estimate, interval, verdict) against the threshold; None without rows."""
    rows: Sequence[Mapping[str, Any]] = evidence.get("per_seed") or []
    if not rows:
        return None
    return {"kind": "forest", "threshold": rounded(evidence.get("threshold")),
            "xlabel": f"{evidence.get('metric') or ''} (green pass, red fail, dashed threshold)",
            "rows": [{"label": f"seed {r.get('seed')}"
                      + (f" / model s{r['model_seed']}" if r.get("model_seed") is not None else "")
                      + (f" {r['label']}" if r.get("label") else ""),
                      "estimate": rounded(r.get("estimate")), "low": rounded(r.get("low")),
                      "high": rounded(r.get("high")), "passed": bool(r.get("passed"))}
                     for r in rows]}


def trajectory(traj: Mapping[str, Any]) -> dict[str, Any]:
    """A checkpoint trajectory: points in step order with intervals, verdicts and the threshold."""
    return {"kind": "trajectory", "title": f"{traj.get('claim')} — {traj.get('series')}",
            "ylabel": str(traj.get("metric") or "estimate"),
            "xlabel": "training step" if traj.get("x_kind") == "step" else "checkpoint",
            "threshold": rounded(traj.get("threshold")),
            "points": [{"x": rounded(p.get("x")), "label": str(p.get("label")),
                        "estimate": rounded(p.get("estimate")), "low": rounded(p.get("low")),
                        "high": rounded(p.get("high")), "passed": bool(p.get("passed"))}
                       for p in traj.get("points") or []]}
