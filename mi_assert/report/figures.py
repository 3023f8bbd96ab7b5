"""Figures: make ``Evidence.figures`` JSON-safe, and draw them as base64 PNGs (matplotlib Agg).

A figure spec is ``{"kind": "heatmap"|"pattern"|"hist"|"line", "data": array-like, "xlabel",
"ylabel", "title", ...}``. Optional extras understood when drawing:

* heatmap: ``xticklabels``/``yticklabels``; values of both signs get a diverging map centred on 0.
* pattern: ``data`` is ``[q, k]`` or ``[examples, q, k]`` (up to 4 examples drawn);
  ``tokens`` (list of str, or list of lists per example) label the axes.
* hist: ``data`` 1-d, or 2-d / list of lists (one histogram per row, e.g. per seed);
  ``labels`` names rows; ``threshold`` draws a vertical line.
* line: ``data`` 1-d (y over index), 2-d (one series per row), or a mapping with ``x``, ``y``
  and optional ``low``/``high`` (drawn as a band) and ``threshold``.
* circuit: ``nodes`` and ``edges`` of :func:`mi_assert.edges.drawing.circuit_figure` (no
  ``data``), drawn as inline SVG.

matplotlib is imported only when drawing, never when recording.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Mapping, Sequence
from typing import Any

KINDS = ("heatmap", "pattern", "hist", "line", "circuit", "feature_dashboard")
#: figures with more values than this keep only their shape (the JSON stays small)
MAX_VALUES = 250_000


def to_plain(value: Any) -> Any:
    """numpy / torch arrays and scalars → nested lists of floats (non-finite → None)."""
    if hasattr(value, "detach"):  # torch tensor, without importing torch
        value = value.detach().to("cpu").float().numpy()
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        value = value.tolist()
    if isinstance(value, Mapping):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (int, str, bool)) or value is None:
        return value
    try:
        return to_plain(value.item())
    except (AttributeError, ValueError):
        return str(value)


def _count(value: Any) -> int:
    if isinstance(value, list):
        return sum(_count(v) for v in value)
    if isinstance(value, Mapping):
        return sum(_count(v) for v in value.values())
    return 1


def figures_to_plain(figures: Mapping[str, Any]) -> dict[str, Any]:
    """``Evidence.figures`` as plain data; unknown kinds and oversized data are flagged, not dropped."""
    out: dict[str, Any] = {}
    for name, spec in (figures or {}).items():
        if not isinstance(spec, Mapping):
            out[str(name)] = {"kind": "invalid", "error": f"figure spec is a {type(spec).__name__}, not a dict"}
            continue
        plain = {str(k): to_plain(v) for k, v in spec.items()}
        if plain.get("kind") not in KINDS:
            plain["error"] = f"unknown figure kind {plain.get('kind')!r}; allowed: {', '.join(KINDS)}"
        n_values = _count(plain.get("data"))
        if n_values > MAX_VALUES:
            plain["data"] = None
            plain["error"] = f"data too large to store ({n_values} values > {MAX_VALUES})"
        out[str(name)] = plain
    return out


# ----- drawing -------------------------------------------------------------------------------

def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80, bbox_inches="tight", metadata={"Software": None})
    _plt().close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _labels(ax: Any, spec: Mapping[str, Any], title: str) -> None:
    ax.set_xlabel(str(spec.get("xlabel", "")))
    ax.set_ylabel(str(spec.get("ylabel", "")))
    ax.set_title(str(spec.get("title") or title), fontsize=10)


def render_png(spec: Mapping[str, Any], title: str = "") -> str:
    """Draw one plain figure spec; returns base64 PNG. Raises ValueError on unusable data."""
    import numpy as np

    kind = spec.get("kind")
    data = spec.get("data")
    if data is None:
        raise ValueError(spec.get("error") or "figure has no data")
    plt = _plt()
    if kind == "heatmap":
        arr = np.asarray(data, dtype=float)
        if arr.ndim == 1:
            arr = arr[None, :]
        if arr.ndim != 2:
            raise ValueError(f"heatmap data must be 2-d, got shape {arr.shape}")
        fig, ax = plt.subplots(figsize=(min(2 + 0.5 * arr.shape[1], 12), min(1.5 + 0.4 * arr.shape[0], 10)))
        finite = arr[np.isfinite(arr)]
        if finite.size and finite.min() < 0 < finite.max():
            lim = float(np.abs(finite).max())
            im = ax.imshow(arr, cmap="RdBu_r", vmin=-lim, vmax=lim, aspect="auto")
        else:
            im = ax.imshow(arr, cmap="viridis", aspect="auto")
        fig.colorbar(im, ax=ax)
        if arr.size <= 200:
            for (i, j), v in np.ndenumerate(arr):
                if np.isfinite(v):
                    ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7, color="black")
        for axis, key in (("x", "xticklabels"), ("y", "yticklabels")):
            labels = spec.get(key)
            if labels:
                getattr(ax, f"set_{axis}ticks")(range(len(labels)))
                getattr(ax, f"set_{axis}ticklabels")([str(s) for s in labels], fontsize=7,
                                                      rotation=90 if axis == "x" else 0)
        _labels(ax, spec, title)
        return _png(fig)
    if kind == "pattern":
        arr = np.asarray(data, dtype=float)
        if arr.ndim == 2:
            arr = arr[None]
        if arr.ndim != 3:
            raise ValueError(f"pattern data must be [q, k] or [examples, q, k], got shape {arr.shape}")
        n = min(arr.shape[0], 4)
        fig, axes = plt.subplots(1, n, figsize=(3.2 * n + 0.8, 3.4), squeeze=False)
        tokens = spec.get("tokens")
        for i in range(n):
            ax = axes[0][i]
            ax.imshow(arr[i], cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto")
            toks = tokens[i] if tokens and isinstance(tokens[0], list) else tokens
            if toks and len(toks) <= 40:
                ax.set_xticks(range(len(toks)))
                ax.set_xticklabels([str(t) for t in toks], rotation=90, fontsize=6)
                ax.set_yticks(range(len(toks)))
                ax.set_yticklabels([str(t) for t in toks], fontsize=6)
            ax.set_xlabel(str(spec.get("xlabel", "key position")))
            ax.set_ylabel(str(spec.get("ylabel", "query position")) if i == 0 else "")
            ax.set_title(f"example {i}", fontsize=9)
        fig.suptitle(str(spec.get("title") or title), fontsize=10)
        return _png(fig)
    if kind == "hist":
        rows = data if isinstance(data, list) and data and isinstance(data[0], list) else [data]
        labels = spec.get("labels") or ([f"seed {i}" for i in range(len(rows))] if len(rows) > 1 else [None])
        fig, ax = plt.subplots(figsize=(6, 3.2))
        values = [np.asarray([v for v in row if v is not None], dtype=float) for row in rows]
        # shared bins over all rows and the threshold: rows compare, and a row of (near-)equal
        # values still shows as a visible bar instead of a zero-width one
        pooled = np.concatenate([v for v in values if v.size] or [np.zeros(1)])
        lo, hi = float(pooled.min()), float(pooled.max())
        if spec.get("threshold") is not None:
            lo, hi = min(lo, float(spec["threshold"])), max(hi, float(spec["threshold"]))
        pad = max(hi - lo, 1e-6) * 0.02
        n_bins = min(30, max(8, int(np.sqrt(max(pooled.size, 1))) * 2))
        edges = np.linspace(lo - pad, hi + pad, n_bins + 1)
        for vals, label in zip(values, labels, strict=False):
            ax.hist(vals, bins=edges, alpha=0.55, label=None if label is None else str(label))
        if spec.get("threshold") is not None:
            ax.axvline(float(spec["threshold"]), color="crimson", ls="--", label="threshold")
        if len(rows) > 1 or spec.get("threshold") is not None:
            ax.legend(fontsize=7)
        _labels(ax, {"ylabel": "count", **spec}, title)
        return _png(fig)
    if kind == "line":
        fig, ax = plt.subplots(figsize=(6.5, 3.4))
        if isinstance(data, Mapping):
            y = np.asarray(data["y"], dtype=float)
            x = np.asarray(data.get("x") or list(range(len(y))), dtype=float)
            if data.get("low") is not None and data.get("high") is not None:
                ax.fill_between(x, np.asarray(data["low"], dtype=float),
                                np.asarray(data["high"], dtype=float), alpha=0.25,
                                label="interval")
            ax.plot(x, y, marker="o", label="estimate")
            ticks = data.get("xticklabels")
            if ticks:
                ax.set_xticks(x)
                ax.set_xticklabels([str(t) for t in ticks], rotation=45, fontsize=7, ha="right")
            threshold = data.get("threshold", spec.get("threshold"))
        else:
            arr = np.asarray(data, dtype=float)
            for row in (arr if arr.ndim == 2 else arr[None]):
                ax.plot(range(len(row)), row, marker=".")
            threshold = spec.get("threshold")
        if threshold is not None:
            ax.axhline(float(threshold), color="crimson", ls="--", label="threshold")
            ax.legend(fontsize=7)
        _labels(ax, spec, title)
        return _png(fig)
    raise ValueError(f"unknown figure kind {kind!r}; allowed: {', '.join(KINDS)}")


def seed_forest_png(evidence: Mapping[str, Any]) -> str | None:
    """Per-seed estimates with their intervals against the threshold (None without seed rows)."""
    rows: Sequence[Mapping[str, Any]] = evidence.get("per_seed") or []
    if not rows:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 0.45 * len(rows) + 1.2))
    for i, row in enumerate(rows):
        est, low, high = row.get("estimate"), row.get("low"), row.get("high")
        if est is None:
            continue
        color = "#2e7d32" if row.get("passed") else "#c62828"
        if low is not None and high is not None:
            ax.plot([low, high], [i, i], color=color, lw=2)
        ax.plot([est], [i], "o", color=color)
    ax.axvline(float(evidence.get("threshold", 0.0)), color="crimson", ls="--", label="threshold")
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels([
        f"seed {r.get('seed')}" + (f" / model s{r['model_seed']}" if r.get("model_seed") is not None else "")
        + (f" {r['label']}" if r.get("label") else "") for r in rows], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel(str(evidence.get("metric", "")))
    ax.set_title("per-seed estimate and interval (green: pass, red: fail)", fontsize=9)
    ax.legend(fontsize=7)
    return _png(fig)
