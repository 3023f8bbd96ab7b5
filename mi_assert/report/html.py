"""A self-contained HTML report: inline CSS, images as base64 PNG, no scripts, no network.

Layout: header with totals and the run's one-line verdict → claims table (verdict, estimate
[interval], the bound-vs-threshold comparison that holds) → baseline comparison (when run
with ``--mi-compare``) → trajectories across checkpoints → one card per claim with its summary
line, a per-member table for composite claims, its per-seed forest plot, figures and settings.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping
from typing import Any

from mi_assert.report.compare import row_claim, row_sort_key, row_verdict
from mi_assert.report.figures import render_png, seed_forest_png
from mi_assert.report.readout import (
    headline,
    is_expected_failure,
    members,
    relation,
    side,
    summary,
    totals,
    verdict,
)
from mi_assert.report.trajectory import trajectory_figure

#: keep reports small: at most this many figures per claim, and in the whole report
MAX_FIGURES_PER_CLAIM = 8
MAX_FIGURES_TOTAL = 300

_CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px;color:#222;background:#fafafa}
h1{font-size:22px;margin:0 0 4px} h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}
.meta{color:#666;font-size:13px}
.totals span{display:inline-block;margin-right:14px;font-weight:600}
table{border-collapse:collapse;font-size:13px;background:#fff;width:100%}
td.claim{min-width:260px} td.nodeid{word-break:break-all;min-width:300px;max-width:420px}
th,td{border:1px solid #e0e0e0;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f0f0f0} td.num{font-family:Menlo,Consolas,monospace;text-align:right;white-space:nowrap}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;font-weight:700;font-size:12px;color:#fff}
.PASS,.ok{background:#2e7d32}.FAIL,.REGRESSED{background:#c62828}.improved{background:#1565c0}
.new,.missing{background:#757575}
.card{background:#fff;border:1px solid #e0e0e0;border-radius:6px;padding:12px 16px;margin:14px 0}
.card h3{font-size:15px;margin:0 0 6px}.nodeid{font-family:Menlo,Consolas,monospace;font-size:12px;color:#555}
.figs{display:flex;flex-wrap:wrap;gap:12px;margin-top:8px}.figs figure{margin:0}
.figs img{max-width:100%;border:1px solid #eee}
figcaption{font-size:12px;color:#555}
details{margin-top:6px;font-size:12px} pre{white-space:pre-wrap;font-size:12px}
.warn{color:#b71c1c;font-weight:600}
.summary{font-family:Menlo,Consolas,monospace;font-size:12px;margin:4px 0}
table.members{width:auto;margin-top:6px} tr.deciding td{background:#fff8e1}
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _num(value: Any) -> str:
    return "–" if value is None else f"{value:.3f}"


def _signed(value: Any) -> str:
    return "–" if value is None else f"{value:+.3f}"


def _img(b64: str, alt: str) -> str:
    return f'<img alt="{_e(alt)}" src="data:image/png;base64,{b64}">'


class _Budget:
    def __init__(self, total: int) -> None:
        self.left = total
        self.skipped = 0

    def take(self) -> bool:
        if self.left <= 0:
            self.skipped += 1
            return False
        self.left -= 1
        return True


def _figure_html(name: str, spec: Mapping[str, Any], budget: _Budget) -> str:
    if not budget.take():
        return ""
    try:
        return f"<figure>{_img(render_png(spec, name), name)}<figcaption>{_e(name)}</figcaption></figure>"
    except Exception as exc:  # a bad figure must not cost the report
        return f'<figure><figcaption class="warn">{_e(name)}: cannot draw ({_e(exc)})</figcaption></figure>'


def _ck(rec: Mapping[str, Any]) -> str:
    ck = rec.get("checkpoint")
    return f' <span class="meta">@{_e(ck.get("label"))}</span>' if ck else ""


def _expected(rec: Mapping[str, Any]) -> str:
    if not is_expected_failure(rec):
        return ""
    label = "xfail" if rec.get("test_outcome") == "xfailed" else "expected by test"
    return f'<div class="meta">{label}</div>'


def _claims_table(records: list[Mapping[str, Any]]) -> str:
    rows = []
    for i, rec in enumerate(records):
        ev = rec["evidence"]
        model = ev.get("model") or {}
        v = verdict(ev)
        deciding = (f'<div class="meta">deciding member: {_e(ev.get("deciding"))}</div>'
                    if members(ev) and ev.get("deciding") else "")
        rows.append(
            f'<tr><td><span class="badge {v}">{v}</span>{_expected(rec)}</td>'
            f'<td class="claim"><a href="#c{i}">{_e(ev.get("claim"))}</a>{_ck(rec)}{deciding}</td>'
            f'<td>{_e(ev.get("metric"))}</td>'
            f'<td class="num">{_num(ev.get("estimate"))} [{_num(ev.get("low"))}, {_num(ev.get("high"))}]</td>'
            f'<td class="num">{_e(relation(ev))}</td>'
            f'<td class="num">{_e(ev.get("n"))} {_e(ev.get("unit") or "")}</td>'
            f'<td>{_e(model.get("spec", ""))}</td>'
            f'<td class="nodeid">{_e(rec.get("nodeid"))}</td></tr>')
    return ("<table><tr><th>verdict</th><th>claim</th><th>metric</th><th>estimate [interval]</th>"
            "<th>bound vs threshold</th><th>n</th><th>model</th><th>test</th></tr>"
            + "".join(rows) + "</table>")


def _comparison(comp: Mapping[str, Any]) -> str:
    rows = []
    for r in sorted(comp["rows"], key=row_sort_key):
        rows.append(
            f'<tr><td><span class="badge {_e(r["status"])}">{_e(r["status"])}</span></td>'
            f'<td class="nodeid">{_e(r.get("test") or "")}</td><td>{_e(row_claim(r))}</td>'
            f'<td class="num">{_num(r["baseline"])}</td>'
            f'<td class="num">{_num(r["new"])} [{_num(r["low"])}, {_num(r["high"])}]</td>'
            f'<td class="num">{_signed(r["delta"])}</td>'
            f'<td class="num">{r["tolerance"]:g}</td><td>{_e(row_verdict(r))}</td>'
            f'<td>{_e(r.get("rule") or "")}</td><td>{_e(r["note"])}</td></tr>')
    warns = "".join(f'<p class="warn">WARNING: {_e(w)}</p>' for w in comp.get("warnings", []))
    return (f"<h2>Comparison with baseline {_e(comp.get('baseline'))}</h2>{warns}"
            "<table><tr><th>status</th><th>test</th><th>claim</th><th>baseline</th>"
            "<th>new [interval]</th><th>delta</th><th>tolerance</th><th>verdict</th>"
            "<th>why</th><th>note</th></tr>" + "".join(rows) + "</table>")


def _members_table(ev: Mapping[str, Any]) -> str:
    rows = []
    for member in members(ev):
        v = verdict(member)
        cls = ' class="deciding"' if member.get("claim") == ev.get("deciding") else ""
        rows.append(
            f'<tr{cls}><td><span class="badge {v}">{v}</span></td><td>{_e(member.get("claim"))}'
            + (" (deciding)" if cls else "") + f'</td><td>{_e(member.get("metric"))}</td>'
            f'<td class="num">{_num(member.get("estimate"))} [{_num(member.get("low"))}, '
            f'{_num(member.get("high"))}]</td><td class="num">{_e(relation(member))}</td>'
            f'<td class="num">{_e(member.get("n"))} {_e(member.get("unit") or "")}</td></tr>')
    return (f'<table class="members"><tr><th colspan="6">{_e(ev.get("composite") or "members")}'
            '</th></tr><tr><th>verdict</th><th>member</th><th>metric</th><th>estimate [interval]</th>'
            "<th>bound vs threshold</th><th>n</th></tr>" + "".join(rows) + "</table>")


def _card(i: int, rec: Mapping[str, Any], budget: _Budget) -> str:
    ev = rec["evidence"]
    model = ev.get("model") or {}
    v = verdict(ev)
    parts = [f'<div class="card" id="c{i}"><h3><span class="badge {v}">'
             f'{v}</span> {_e(ev.get("claim"))}</h3>',
             f'<div class="nodeid">{_e(rec.get("nodeid"))}</div>',
             f'<div class="summary">{_e(summary(ev))}</div>',
             f'<div class="meta">{_e(headline(ev))} ({_e(side(ev))}, {_e(ev.get("alternative"))}) — model '
             f'{_e(model.get("spec", "?"))} #{_e(model.get("checkpoint", "?"))} on '
             f'{_e(model.get("backend", "?"))}/{_e(model.get("device", "?"))}</div>']
    if members(ev):
        parts.append(_members_table(ev))
    figs = []
    if ev.get("per_seed") and budget.take():
        try:
            png = seed_forest_png(ev)
            if png:
                figs.append(f"<figure>{_img(png, 'per-seed')}<figcaption>per seed</figcaption></figure>")
        except Exception as exc:
            figs.append(f'<figcaption class="warn">per-seed plot failed: {_e(exc)}</figcaption>')
    for k, (name, spec) in enumerate(sorted((rec.get("figures") or {}).items())):
        if k >= MAX_FIGURES_PER_CLAIM:
            figs.append(f'<figcaption>{len(rec["figures"]) - k} more figure(s) in report.json</figcaption>')
            break
        figs.append(_figure_html(name, spec, budget))
    if figs:
        parts.append('<div class="figs">' + "".join(figs) + "</div>")
    extra = {k: ev.get(k) for k in ("settings", "details", "model", "per_seed") if ev.get(k)}
    if extra:
        parts.append("<details><summary>settings, details, per-seed rows</summary><pre>"
                     + _e(json.dumps(extra, indent=1, sort_keys=True, default=str)) + "</pre></details>")
    parts.append("</div>")
    return "".join(parts)


def render_html(doc: Mapping[str, Any]) -> str:
    records = list(doc.get("records") or [])
    budget = _Budget(MAX_FIGURES_TOTAL)
    counts = totals(records)
    meta = doc.get("meta") or {}
    out = ["<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
           "<title>mi-assert report</title>", f"<style>{_CSS}</style></head><body>",
           "<h1>mi-assert report</h1>",
           f'<div class="meta">created {_e(doc.get("created", ""))}'
           + "".join(f" · {_e(k)}: {_e(v)}" for k, v in sorted(meta.items())
                     if k != "argv" and v is not None)
           + ("" if doc.get("complete", True) else ' · <span class="warn">partial (run in progress or killed)</span>')
           + "</div>",
           f'<p class="totals"><span>{counts["claims"]} claims</span>'
           f'<span style="color:#2e7d32">{counts["passed"]} passed</span>'
           f'<span style="color:#c62828">{counts["failed"]} failed</span>'
           + (f'<span class="meta">of which {counts["expected_failures"]} expected by their tests '
              '(pytest.raises / xfail)</span>' if counts["expected_failures"] else "")
           + f'</p><p class="verdict">{_e(counts["verdict"])}</p>',
           "<h2>Claims</h2>", _claims_table(records) if records else "<p>No claims recorded.</p>"]
    if doc.get("comparison"):
        out.append(_comparison(doc["comparison"]))
    trajs = doc.get("trajectories") or []
    if trajs:
        out.append("<h2>Trajectories across checkpoints</h2><div class='figs'>")
        for t in trajs:
            out.append(_figure_html(f"{t['claim']} ({t['series']})", trajectory_figure(t), budget))
        out.append("</div>")
    out.append("<h2>Evidence per claim</h2>")
    out.extend(_card(i, rec, budget) for i, rec in enumerate(records))
    if budget.skipped:
        out.append(f'<p class="warn">{budget.skipped} figure(s) not drawn (report limit '
                   f'{MAX_FIGURES_TOTAL}); their data is in report.json</p>')
    out.append("</body></html>")
    return "\n".join(out)
