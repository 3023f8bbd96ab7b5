"""The HTML report: one self-contained file (inline CSS, inline script, no network).

Reading order (:mod:`mi_assert.report.layout`): the run's verdict in one line; claims that
failed unexpectedly; regressions against the baseline; tests skipped for missing weights; passed
claims; expected failures, collapsed. Claims group by suite file → model → test, each row links
to its card, and filters (verdict, model, family, text) hide rows and cards. Then the full
baseline diff, trajectories over checkpoints, what the run cost, and one card per claim.

Pictures are drawn in the browser from compact JSON embedded in the page
(:mod:`mi_assert.report.figure_data`): attention patterns you hover token by token, heatmaps,
histograms, per-seed intervals and trajectories with hover values, and SAE feature dashboards
(top-activating contexts shaded token by token, activation histogram, boosted / suppressed
tokens). Circuits are inline SVG.
"""

from __future__ import annotations

import hashlib
import html
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mi_assert.report import figure_data, layout
from mi_assert.report.compare import row_claim, row_sort_key, row_verdict
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

#: at most this many figures per claim are drawn (report.json keeps them all)
MAX_FIGURES_PER_CLAIM = 8
ASSETS = Path(__file__).with_name("assets")
DIFF_ORDER = ("REGRESSED", "improved", "new", "missing", "ok")


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _num(value: Any) -> str:
    return "–" if value is None else f"{value:.3f}"


def _signed(value: Any) -> str:
    return "–" if value is None else f"{value:+.3f}"


def _asset(name: str) -> str:
    return (ASSETS / name).read_text(encoding="utf-8")


class _Page:
    """Figure data for the page's script, and the anchor id of every record."""

    def __init__(self, records: Sequence[Mapping[str, Any]]) -> None:
        self.figs: dict[str, Any] = {}
        self.svgs: dict[str, str] = {}
        self.ids: dict[int, str] = {}
        used: dict[str, int] = {}
        for rec in records:
            rid = layout.anchor_id(rec)
            used[rid] = used.get(rid, 0) + 1
            self.ids[id(rec)] = rid if used[rid] == 1 else f"{rid}-{used[rid]}"

    def rid(self, rec: Mapping[str, Any]) -> str:
        return self.ids[id(rec)]

    def figure(self, spec: Mapping[str, Any], caption: str) -> str:
        fid = f"f{len(self.figs)}"
        self.figs[fid] = spec
        return (f'<div class="fig" data-fig="{fid}" data-kind="{_e(spec.get("kind"))}">'
                f'<div class="body"></div><div class="readout"></div>'
                f'<div class="cap">{_e(caption)}</div></div>')

    def svg(self, markup: str) -> str:
        """Id of ``markup`` in the page's data: the same circuit drawn on several cards (its
        claims) is stored once."""
        key = "s" + hashlib.sha1(markup.encode()).hexdigest()[:12]
        self.svgs[key] = markup
        return key

    def data_script(self) -> str:
        text = json.dumps({"figs": self.figs, "svgs": self.svgs}, separators=(",", ":"),
                          allow_nan=False)
        return ('<script type="application/json" id="mi-data">'
                + text.replace("</", "<\\/") + "</script>")


def _verdict_label(rec: Mapping[str, Any]) -> str:
    if rec["evidence"].get("passed"):
        return "PASS"
    return "XFAIL" if is_expected_failure(rec) else "FAIL"


def _badge(rec: Mapping[str, Any]) -> str:
    label = _verdict_label(rec)
    text = {"XFAIL": "expected FAIL"}.get(label, label)
    return f'<span class="badge {label}">{text}</span>'


def _ck(rec: Mapping[str, Any]) -> str:
    ck = rec.get("checkpoint")
    return f' <span class="meta">@{_e(ck.get("label"))}</span>' if ck else ""


def _cost_cell(rec: Mapping[str, Any]) -> str:
    cost = rec.get("cost") or {}
    if not cost:
        return "–"
    return f'{cost.get("seconds", 0):.2f} s · {cost.get("forward_passes", 0)} fwd'


def _search_text(rec: Mapping[str, Any]) -> str:
    ev = rec["evidence"]
    parts = [ev.get("claim"), ev.get("metric"), rec.get("nodeid"), layout.model_of(rec),
             ev.get("deciding"), (rec.get("checkpoint") or {}).get("label")]
    return " ".join(str(p) for p in parts if p).lower()


_ROW_HEAD = ("<tr><th>verdict</th><th>claim</th><th>metric</th><th>estimate [interval]</th>"
             "<th>bound vs threshold</th><th>n</th><th>cost</th></tr>")


def _claim_rows(page: _Page, section: str, records: Sequence[Mapping[str, Any]]) -> str:
    if not records:
        return ""
    out = ["<table class='claims'>", _ROW_HEAD]
    for g_index, group in enumerate(layout.grouped(records)):
        gid = f"{section}-{g_index}"
        n_pass = sum(1 for r in group.records if r["evidence"].get("passed"))
        out.append(
            f'<tr class="group-row" data-group="{gid}"><th colspan="7"><span class="path">'
            f'{_e(group.suite)}</span> › {_e(group.model)} › {_e(group.test)} '
            f'<span class="meta">{len(group.records)} claim(s): {n_pass} passed, '
            f'{len(group.records) - n_pass} failed</span></th></tr>')
        for rec in group.records:
            ev = rec["evidence"]
            rid = page.rid(rec)
            deciding = (f'<div class="meta">deciding member: {_e(ev.get("deciding"))}</div>'
                        if members(ev) and ev.get("deciding") else "")
            out.append(
                f'<tr class="claim-row" id="{rid}" data-key="{_e(rec.get("key"))}" '
                f'data-verdict="{_verdict_label(rec)}" data-model="{_e(layout.model_of(rec))}" '
                f'data-family="{_e(layout.family_of(ev))}" data-group="{gid}" '
                f'data-search="{_e(_search_text(rec))}">'
                f"<td>{_badge(rec)}</td>"
                f'<td class="claim"><a href="#card-{rid}">{_e(ev.get("claim"))}</a>{_ck(rec)}{deciding}</td>'
                f"<td>{_e(ev.get('metric'))}</td>"
                f'<td class="num">{_num(ev.get("estimate"))} [{_num(ev.get("low"))}, {_num(ev.get("high"))}]</td>'
                f'<td class="num">{_e(relation(ev))}</td>'
                f'<td class="num">{_e(ev.get("n"))} {_e(ev.get("unit") or "")}</td>'
                f'<td class="num">{_cost_cell(rec)}</td></tr>')
    out.append("</table>")
    return "".join(out)


def _filters(records: Sequence[Mapping[str, Any]]) -> str:
    models = sorted({layout.model_of(r) for r in records})
    families = sorted({layout.family_of(r["evidence"]) for r in records})

    def options(values: Sequence[str]) -> str:
        return "".join(f'<option value="{_e(v)}">{_e(v)}</option>' for v in values)

    return ('<nav class="filters" aria-label="filters">'
            '<label>verdict <select id="filter-verdict"><option value="">all</option>'
            '<option value="UNEXPECTED">failed (unexpected)</option>'
            '<option value="FAIL">failed (all)</option><option value="XFAIL">expected failures</option>'
            '<option value="PASS">passed</option></select></label>'
            f'<label>model <select id="filter-model"><option value="">all</option>{options(models)}</select></label>'
            f'<label>family <select id="filter-family"><option value="">all</option>{options(families)}</select></label>'
            '<label>text <input type="search" id="filter-text" placeholder="claim, test, head..."></label>'
            '<span id="filter-count" class="meta"></span>'
            '<span><a href="#sec-unexpected">failed</a><a href="#sec-regressed">regressed</a>'
            '<a href="#sec-missing">missing weights</a><a href="#sec-passed">passed</a>'
            '<a href="#sec-expected">expected</a><a href="#sec-diff">diff</a>'
            '<a href="#sec-cost">cost</a><a href="#sec-evidence">cards</a></span></nav>')


def _header(doc: Mapping[str, Any], counts: Mapping[str, Any], n_missing: int,
            n_regressed: int | None) -> str:
    meta = doc.get("meta") or {}
    shown = {k: v for k, v in sorted(meta.items())
             if k not in ("argv", "missing_weights") and v is not None}
    bad = counts["unexpected_failures"] or n_regressed
    needs = [f'<a href="#sec-unexpected">{counts["unexpected_failures"]} unexpected failure(s)</a>']
    if n_regressed is not None:
        needs.append(f'<a href="#sec-regressed">{n_regressed} regression(s) against the baseline</a>')
    needs.append(f'<a href="#sec-missing">{n_missing} test(s) skipped for missing weights</a>')
    return ("<header><h1>mi-assert report</h1>"
            f'<div class="meta">created {_e(doc.get("created", ""))}'
            + "".join(f" · {_e(k)}: {_e(v)}" for k, v in shown.items())
            + ("" if doc.get("complete", True)
               else ' · <span class="warn">partial (run in progress or killed)</span>')
            + "</div>"
            f'<p class="run-verdict {"bad" if bad else "good"}" id="run-verdict">{_e(counts["verdict"])}</p>'
            f'<p class="totals"><span>{counts["claims"]} claims</span>'
            f'<span style="color:#2e7d32">{counts["passed"]} passed</span>'
            f'<span style="color:#c62828">{counts["unexpected_failures"]} failed unexpectedly</span>'
            f'<span style="color:#8d6e63">{counts["expected_failures"]} expected failures</span>'
            f"<span>{n_missing} skipped for missing weights</span></p>"
            f'<p class="meta">needs a reader first: {" · ".join(needs)}</p></header>')


def _regressions(page: _Page, comp: Mapping[str, Any] | None,
                 cards: Mapping[tuple[str, str], str]) -> str:
    if comp is None:
        return ('<section id="sec-regressed"><h2>Regressions against the baseline</h2>'
                '<p class="meta">not compared (run with --mi-compare NAME)</p></section>')
    rows = layout.regressions(comp)
    body = _diff_table(rows, cards) if rows else "<p>No claim regressed beyond its tolerance.</p>"
    return (f'<section id="sec-regressed"><h2>Regressions against the baseline '
            f'{_e(comp.get("baseline"))} <span class="count">({len(rows)})</span></h2>{body}</section>')


def _missing(rows: Sequence[Mapping[str, str]]) -> str:
    if not rows:
        body = "<p>None: every model and SAE the tests asked for was available.</p>"
    else:
        body = ("<table><tr><th>outcome</th><th>test</th><th>weights</th></tr>"
                + "".join(f'<tr class="missing-row"><td><span class="badge {"FAIL" if r["outcome"] == "failed" else "skipped"}">'
                          f'{_e(r["outcome"])}</span></td><td class="nodeid">{_e(r["nodeid"])}</td>'
                          f'<td>{_e(r["model"])}</td></tr>' for r in rows)
                + "</table><p class='meta'>These tests checked nothing on this machine; "
                "--mi-require-models makes them fail.</p>")
    return (f'<section id="sec-missing"><h2>Skipped for missing weights '
            f'<span class="count">({len(rows)})</span></h2>{body}</section>')


def _card_index(page: _Page, records: Sequence[Mapping[str, Any]]) -> dict[tuple[str, str], str]:
    """(record key, checkpoint label) → the card's anchor, for the diff's links."""
    out = {}
    for rec in records:
        ck = rec.get("checkpoint") or {}
        out[(str(rec.get("key")), str(ck.get("label") or ""))] = page.rid(rec)
    return out


def _row_card(row: Mapping[str, Any], cards: Mapping[tuple[str, str], str]) -> str | None:
    key = str(row.get("key") or "")
    label = str(row.get("checkpoint") or "")
    while key:
        if (key, label) in cards:
            return cards[(key, label)]
        key = key.rpartition("::")[0]  # a member's key: key::member claim
    return None


def _interval(est: Any, low: Any, high: Any) -> str:
    return f"{_num(est)} [{_num(low)}, {_num(high)}]" if low is not None else _num(est)


def _diff_table(rows: Sequence[Mapping[str, Any]], cards: Mapping[tuple[str, str], str]) -> str:
    out = ["<table class='diff'><tr><th>status</th><th>test</th><th>claim / member</th>"
           "<th>checkpoint</th><th>baseline [interval]</th><th>new [interval]</th><th>delta</th>"
           "<th>tolerance</th><th>verdict</th><th>why</th><th>cards</th></tr>"]
    for r in rows:
        rid = _row_card(r, cards)
        ident = f"{r.get('key')}|{r.get('series') or ''}|{r.get('checkpoint') or ''}"
        base_id = "base-" + hashlib.sha1(ident.encode()).hexdigest()[:12]
        links = (f'<a href="#card-{rid}">new</a>' if rid else "–") + (
            f' · <a href="#{base_id}">baseline</a>' if r.get("baseline") is not None else "")
        base = ""
        if r.get("baseline") is not None:
            base = (f'<details id="{base_id}"><summary>baseline card</summary>'
                    f'{_e(r.get("baseline_verdict"))}: {_e(r.get("metric"))} = '
                    f'{_interval(r.get("baseline"), r.get("baseline_low"), r.get("baseline_high"))}'
                    f'{_e(", threshold " + format(r["baseline_threshold"], ".3f")) if r.get("baseline_threshold") is not None else ""}'
                    "</details>")
        out.append(
            f'<tr class="diff-row" data-status="{_e(r["status"])}"><td><span class="badge {_e(r["status"])}">'
            f'{_e(r["status"])}</span></td><td class="nodeid">{_e(r.get("test") or "")}</td>'
            f"<td>{_e(row_claim(r))}</td><td>{_e(r.get('where') or r.get('checkpoint') or '')}</td>"
            f'<td class="num">{_interval(r.get("baseline"), r.get("baseline_low"), r.get("baseline_high"))}</td>'
            f'<td class="num">{_interval(r.get("new"), r.get("low"), r.get("high"))}</td>'
            f'<td class="num">{_signed(r.get("delta"))}</td><td class="num">{r.get("tolerance", 0):g}</td>'
            f"<td>{_e(row_verdict(r))}</td><td>{_e(r.get('rule') or '')} {_e(r.get('note') or '')}</td>"
            f"<td>{links}{base}</td></tr>")
    out.append("</table>")
    return "".join(out)


def _diff(comp: Mapping[str, Any], cards: Mapping[tuple[str, str], str]) -> str:
    rows = sorted(comp.get("rows") or [], key=lambda r: (
        DIFF_ORDER.index(r["status"]) if r.get("status") in DIFF_ORDER else len(DIFF_ORDER),
        row_sort_key(r)))
    counts = comp.get("counts") or {}
    warns = "".join(f'<p class="warn">WARNING: {_e(w)}</p>' for w in comp.get("warnings", []))
    return (f'<section id="sec-diff"><h2>Baseline diff: {_e(comp.get("baseline"))} '
            f'<span class="count">({", ".join(f"{counts.get(s, 0)} {s}" for s in DIFF_ORDER)})</span></h2>'
            f"{warns}{_diff_table(rows, cards)}</section>")


def _cost(records: Sequence[Mapping[str, Any]]) -> str:
    suites: dict[str, dict[str, float]] = {}
    for rec in records:
        cost = rec.get("cost") or {}
        s = suites.setdefault(layout.suite_of(rec), {"claims": 0, "seconds": 0.0, "passes": 0,
                                                     "prompts": 0, "peak": 0.0})
        s["claims"] += 1
        s["seconds"] += float(cost.get("seconds") or 0.0)
        s["passes"] += int(cost.get("forward_passes") or 0)
        s["prompts"] += int(cost.get("prompts") or 0)
        s["peak"] = max(s["peak"], float(cost.get("cuda_peak_mb") or cost.get("peak_rss_mb") or 0.0))
    rows = "".join(
        f'<tr><td class="nodeid">{_e(name)}</td><td class="num">{int(s["claims"])}</td>'
        f'<td class="num">{s["seconds"]:.1f}</td><td class="num">{int(s["passes"])}</td>'
        f'<td class="num">{int(s["prompts"])}</td><td class="num">{s["peak"]:.0f}</td></tr>'
        for name, s in sorted(suites.items()))
    total = {k: sum(s[k] for s in suites.values()) for k in ("claims", "seconds", "passes", "prompts")}
    return ('<section id="sec-cost"><h2>Run cost</h2>'
            "<table><tr><th>suite</th><th>claims</th><th>seconds</th><th>forward passes</th>"
            "<th>prompts run</th><th>peak memory (MB)</th></tr>" + rows
            + f'<tr><th>total</th><td class="num">{int(total["claims"])}</td>'
            f'<td class="num">{total["seconds"]:.1f}</td><td class="num">{int(total["passes"])}</td>'
            f'<td class="num">{int(total["prompts"])}</td><td></td></tr></table>'
            '<p class="meta">A claim\'s cost is what ran since the previous claim of its test '
            "(measurement and statistics); forward passes count calls of the model (a stacked "
            "patching kernel call counts once, with all its variants' prompts); peak memory is "
            "the process's resident high-water mark (the GPU's peak allocation on CUDA).</p></section>")


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


def _counterexample(ev: Mapping[str, Any]) -> str:
    ce = (ev.get("details") or {}).get("counterexample")
    if not isinstance(ce, Mapping):
        return ""
    text = f"<div>text: <code>{_e(repr(ce.get('text')))}</code></div>" if ce.get("text") is not None else ""
    structure = f"<div>{_e(ce['structure'])}</div>" if ce.get("structure") else ""
    return ('<div class="counterexample"><b>Counterexample</b> '
            f'(found at example {_e(ce.get("found_at"))}, shrunk; margin {_e(_margin(ce.get("margin")))}, '
            "&lt;= 0 fails)"
            f"<div>tokens: <code>{_e(ce.get('tokens'))}</code></div>{text}{structure}</div>")


def _margin(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, (int, float)) else str(value)


def _circuit_svg(spec: Mapping[str, Any]) -> str:
    try:
        from mi_assert.edges.drawing import circuit_svg
    except ImportError:  # drawing needs networkx's layout; the data stays in report.json
        return '<div class="meta">circuit drawing unavailable; its graph is in report.json</div>'
    try:
        return circuit_svg(spec)
    except Exception as exc:  # a bad figure must not cost the report
        return f'<div class="warn">cannot draw the circuit: {_e(exc)}</div>'


def _figures(page: _Page, rec: Mapping[str, Any]) -> str:
    ev = rec["evidence"]
    figs = []
    seeds = figure_data.forest(ev)
    if seeds is not None:
        figs.append(page.figure(seeds, "per seed: estimate and interval against the threshold"))
    stored = sorted((rec.get("figures") or {}).items())
    for k, (name, spec) in enumerate(stored):
        if k >= MAX_FIGURES_PER_CLAIM:
            figs.append(f'<div class="cap">{len(stored) - k} more figure(s) in report.json</div>')
            break
        caption = str(spec.get("title") or name)
        if spec.get("kind") == "circuit":
            figs.append(f'<div class="fig"><div class="circuit" data-svg="{page.svg(_circuit_svg(spec))}">'
                        f'</div><div class="cap">{_e(caption)}</div></div>')
        else:
            figs.append(page.figure(figure_data.browser_figure(spec), caption))
    return '<div class="figs">' + "".join(figs) + "</div>" if figs else ""


def _card(page: _Page, rec: Mapping[str, Any]) -> str:
    ev = rec["evidence"]
    model = ev.get("model") or {}
    cost = rec.get("cost") or {}
    parts = [f'<div class="card" id="card-{page.rid(rec)}"><h3>{_badge(rec)} {_e(ev.get("claim"))}{_ck(rec)}</h3>',
             f'<div class="nodeid">{_e(rec.get("nodeid"))} · <a href="#{page.rid(rec)}">row</a></div>',
             f'<div class="summary">{_e(summary(ev))}</div>',
             f'<div class="meta">{_e(headline(ev))} ({_e(side(ev))}, {_e(ev.get("alternative"))}) — model '
             f'{_e(model.get("spec", "?"))} #{_e(model.get("checkpoint", "?"))} on '
             f'{_e(model.get("backend", "?"))}/{_e(model.get("device", "?"))}</div>']
    if is_expected_failure(rec):
        parts.append('<div class="meta">expected failure: '
                     + ("strict xfail" if rec.get("test_outcome") == "xfailed" else "the test expected it (pytest.raises)")
                     + "</div>")
    if cost:
        parts.append(f'<div class="cost">cost: {cost.get("seconds", 0):.2f} s, '
                     f'{cost.get("forward_passes", 0)} forward pass(es) over {cost.get("prompts", 0)} prompt(s), '
                     f'device {_e(model.get("device", "?"))}, peak memory {_e(cost.get("cuda_peak_mb", cost.get("peak_rss_mb")))} MB'
                     f' (+{_e(cost.get("rss_growth_mb", 0))} MB during this claim)</div>')
    if ev.get("hint") and not ev.get("passed"):
        parts.append(f'<div class="meta">hint: {_e(ev["hint"])}</div>')
    parts.append(_counterexample(ev))
    if members(ev):
        parts.append(_members_table(ev))
    parts.append(_figures(page, rec))
    # per-seed rows are in the chart (hover) and report.json; the page keeps the rest
    extra = {k: ev.get(k) for k in ("settings", "details", "model") if ev.get(k)}
    if extra:
        parts.append("<details><summary>settings and details</summary><pre>"
                     + _e(json.dumps(extra, indent=1, sort_keys=True, default=str)) + "</pre></details>")
    parts.append("</div>")
    return "".join(parts)


def _trajectories(page: _Page, trajs: Sequence[Mapping[str, Any]]) -> str:
    if not trajs:
        return ""
    figs = "".join(page.figure(figure_data.trajectory(t), f"{t['claim']} ({t['series']})") for t in trajs)
    return f'<section id="sec-trajectories"><h2>Trajectories across checkpoints</h2><div class="figs">{figs}</div></section>'


def render_html(doc: Mapping[str, Any]) -> str:
    records = list(doc.get("records") or [])
    page = _Page(records)
    counts = totals(records)
    missing = layout.missing_weights(doc.get("meta") or {})
    comp = doc.get("comparison")
    regressed = len(layout.regressions(comp)) if comp else None
    sections = layout.by_section(records)
    cards = _card_index(page, records)
    expected = sections["expected"]
    out = ["<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
           "<meta name='viewport' content='width=device-width, initial-scale=1'>",
           "<title>mi-assert report</title>", f"<style>{_asset('report.css')}</style></head><body>",
           _filters(records), "<main>", _header(doc, counts, len(missing), regressed),
           f'<section id="sec-unexpected"><h2>Failed claims <span class="count">'
           f'({len(sections["unexpected"])})</span></h2>'
           + (_claim_rows(page, "unexpected", sections["unexpected"])
              or "<p>No claim failed unexpectedly.</p>") + "</section>",
           _regressions(page, comp, cards), _missing(missing),
           f'<section id="sec-passed"><h2>Passed claims <span class="count">({len(sections["passed"])})'
           "</span></h2>" + (_claim_rows(page, "passed", sections["passed"]) or "<p>No claim passed.</p>")
           + "</section>",
           f'<section id="sec-expected"><h2>Expected failures <span class="count">({len(expected)})</span></h2>'
           + (f"<details><summary>{len(expected)} claim(s) that failed as their tests expected "
              "(pytest.raises, strict xfail): the test passed</summary>"
              + _claim_rows(page, "expected", expected) + "</details>" if expected
              else "<p>None.</p>") + "</section>"]
    if comp:
        out.append(_diff(comp, cards))
    out.append(_trajectories(page, doc.get("trajectories") or []))
    out.append(_cost(records))
    ordered = [rec for name in ("unexpected", "passed", "expected")
               for group in layout.grouped(sections[name]) for rec in group.records]
    out.append('<section id="sec-evidence"><h2>Evidence per claim</h2>')
    out.extend(_card(page, rec) for rec in ordered)
    if not records:
        out.append("<p>No claims recorded.</p>")
    out.append("</section></main>")
    out.append(page.data_script())
    out.append(f"<script>{_asset('report.js')}</script></body></html>")
    return "\n".join(out)
