"""The HTML report in a real browser: Playwright driving Debian's chromium (no browser download).

Skipped, naming what is missing, without the ``playwright`` package or a chromium binary
(``MI_CHROMIUM`` or ``chromium`` / ``chromium-browser`` on PATH). By default the page under
test is a small report with every section (:mod:`tests.report.browser_report`, plus an SAE
feature-firing claim carrying a feature dashboard: :func:`dashboard_document`); with
``MI_BROWSER_REPORT=reports/latest/report.html`` the same checks run on the main job's report
(``.ci/run`` does that after the main job).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mi_assert.report.compare import compare
from mi_assert.report.json_report import build_report, write_report
from mi_assert.report.layout import anchor_id
from tests.report.browser_report import _ev, _record, records

DASH_TEXT = ("The cat sat on the mat . The dog ran to the park . A cat and a dog met on the "
             "road . The old cat slept in the sun while the dog barked .").split(" ")


def dashboard_spec() -> dict[str, Any]:
    """A feature dashboard on made-up text (a 'cat' latent), built by the library's own code
    (:func:`mi_assert.sae.dashboard.dashboard_from_activations`) from planted activations."""
    import torch

    from mi_assert.sae.dashboard import LOGIT_PATH, dashboard_from_activations

    words = [" " + w for w in DASH_TEXT]
    vocab = {w: i for i, w in enumerate(dict.fromkeys(["<bos>"] + words))}
    names = {i: w for w, i in vocab.items()}
    row = torch.tensor([vocab[w] for w in words])
    bos = torch.tensor([vocab["<bos>"]])
    toks = torch.stack([torch.cat([bos, row.roll(-shift)]) for shift in (0, 5, 11)])
    gen = torch.Generator().manual_seed(0)
    acts = torch.zeros(toks.shape)
    for b in range(toks.shape[0]):
        for t in range(1, toks.shape[1]):
            word = names[int(toks[b, t])].strip()
            if word == "cat":
                acts[b, t] = 2.0 + float(torch.rand(1, generator=gen))
            elif word in ("dog", "sat", "slept"):
                acts[b, t] = 0.2 + 0.8 * float(torch.rand(1, generator=gen))
    mask = toks != vocab["<bos>"]
    logits = ([(vocab[" cat"], 1.25), (vocab[" mat"], 0.5)], [(vocab[" dog"], -0.75)],
              LOGIT_PATH, "")
    dash = dashboard_from_activations(
        [(toks, acts, mask)], 7, "blocks.0.hook_resid_post", logits=logits, k=6,
        token_text=lambda ids: ([names[int(i)] for i in ids], False),
        sources={"positive": 2, "negative": 1})
    return dash.figure()


def dashboard_record() -> dict[str, Any]:
    ev = _ev("SAE latent 7 at blocks.0.hook_resid_post fires on the positive prompts", 0.97, 0.93,
             0.99, 0.9, metric="AUROC (positive vs negative prompts)", family="sae")
    return _record(ev, "suites/sae.py::test_cat_latent", figures={"dashboard": dashboard_spec()})


def dashboard_document() -> dict[str, Any]:
    """:func:`tests.report.browser_report.document` with the dashboard claim added."""
    run = records() + [dashboard_record()]
    baseline = records((0.2, 0.6, 0.99))
    meta = {"mi_assert": "test", "missing_weights": [
        {"nodeid": "suites/gpt2.py::test_gpt2_induction", "model": "gpt2", "outcome": "skipped"}]}
    return build_report(run, meta, compare(baseline, run, {}, "main"))

playwright_api = pytest.importorskip("playwright.sync_api", reason="needs the playwright package")


def _chromium() -> str | None:
    for candidate in (os.environ.get("MI_CHROMIUM"), shutil.which("chromium"),
                      shutil.which("chromium-browser")):
        if candidate and Path(candidate).exists():
            return candidate
    return None


CHROMIUM = _chromium()
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="needs chromium (apt-get install -y chromium, or set MI_CHROMIUM)")


@pytest.fixture(scope="module")
def report_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    given = os.environ.get("MI_BROWSER_REPORT")
    if given:
        path = Path(given).resolve()
        assert path.exists() and (path.parent / "report.json").exists(), path
        return path
    folder = tmp_path_factory.mktemp("report")
    _, html_path = write_report(folder, dashboard_document())
    return html_path


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


class Opened:
    def __init__(self, page: Any, errors: list[str], requests: list[str]) -> None:
        self.page, self.errors, self.requests = page, errors, requests


@pytest.fixture
def opened(browser: Any, report_path: Path) -> Iterator[Opened]:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    requests: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("request", lambda r: requests.append(r.url))
    page.goto(report_path.as_uri())
    page.wait_for_load_state("load")
    yield Opened(page, errors, requests)
    page.close()


def _records(report_path: Path) -> list[dict[str, Any]]:
    return json.loads((report_path.parent / "report.json").read_text())["records"]


def test_every_claim_has_a_row_with_its_id_and_a_card(opened: Opened, report_path: Path) -> None:
    records = _records(report_path)
    page = opened.page
    assert page.locator("tr.claim-row").count() == len(records) > 0
    for rec in records:
        rid = anchor_id(rec)
        row = page.locator(f"tr.claim-row#{rid}")
        assert row.count() == 1, rec["key"]
        assert row.get_attribute("data-key") == rec["key"]
        assert page.locator(f"#card-{rid}").count() == 1
    assert opened.errors == []


def test_no_console_errors_and_no_network(opened: Opened, report_path: Path) -> None:
    opened.page.evaluate("miAssertDrawAll()")  # every figure, not only those scrolled to
    assert opened.errors == []
    assert opened.requests == [report_path.as_uri()], opened.requests
    drawn = opened.page.locator(".fig[data-fig] .body")
    assert drawn.count() > 0
    assert all(drawn.nth(i).inner_html() for i in range(drawn.count())), "a figure stayed empty"


def test_filters_hide_and_show_rows(opened: Opened, report_path: Path) -> None:
    page = opened.page
    rows = page.locator("tr.claim-row")
    total = rows.count()
    verdicts = [rows.nth(i).get_attribute("data-verdict") for i in range(total)]

    def visible() -> list[str]:
        return [rows.nth(i).get_attribute("id") or "" for i in range(total)
                if "hidden-by-filter" not in (rows.nth(i).get_attribute("class") or "")]

    page.select_option("#filter-verdict", "PASS")
    assert len(visible()) == verdicts.count("PASS") < total
    assert page.locator("#filter-count").inner_text() == f"{verdicts.count('PASS')} of {total} claims shown"
    page.select_option("#filter-verdict", "FAIL")
    assert len(visible()) == total - verdicts.count("PASS")
    page.select_option("#filter-verdict", "")
    assert len(visible()) == total

    first = _records(report_path)[0]
    page.fill("#filter-text", first["evidence"]["claim"].lower())
    shown = visible()
    assert anchor_id(first) in shown and len(shown) < total or total == 1
    card = page.locator(f"#card-{anchor_id(first)}")
    assert "hidden-by-filter" not in (card.get_attribute("class") or "")
    page.fill("#filter-text", "no claim is called this")
    assert visible() == [] and page.locator("#filter-count").inner_text() == f"0 of {total} claims shown"
    page.fill("#filter-text", "")

    models = page.locator("#filter-model option")
    model = models.nth(1).get_attribute("value")
    page.select_option("#filter-model", model)
    assert all(rows.nth(i).get_attribute("data-model") == model for i in range(total)
               if rows.nth(i).get_attribute("id") in visible())
    assert 0 < len(visible()) <= total


def test_hovering_a_token_changes_the_highlighted_keys(opened: Opened) -> None:
    view = opened.page.locator(".fig[data-kind=pattern]").first
    view.scroll_into_view_if_needed()
    tokens = view.locator(".tok")
    tokens.first.wait_for()
    n = tokens.count()
    assert n >= 4

    def highlighted(query: int) -> list[str]:
        tokens.nth(query).hover()
        assert "query" in (tokens.nth(query).get_attribute("class") or "")
        return [tokens.nth(k).get_attribute("data-i") or "" for k in range(n)
                if "key-hl" in (tokens.nth(k).get_attribute("class") or "")]

    seen = {tuple(highlighted(q)) for q in range(n)}
    assert len(seen) > 1, "every query highlights the same keys"
    readout = view.locator(".readout").first.inner_text()
    assert readout.startswith("query ") and "attends" in readout
    assert opened.errors == []


def test_a_claim_link_opens_its_card(opened: Opened, report_path: Path) -> None:
    rec = _records(report_path)[-1]
    rid = anchor_id(rec)
    opened.page.locator(f"tr#{rid} a[href='#card-{rid}']").click(force=True)
    assert opened.page.evaluate("location.hash") == f"#card-{rid}"
    assert opened.page.locator(f"#card-{rid}").is_visible() or rec["test_outcome"] in ("xfailed",)


def test_sections_come_in_reading_order(opened: Opened) -> None:
    ids = opened.page.eval_on_selector_all("main > section", "els => els.map(e => e.id)")
    core = [i for i in ids if i in ("sec-unexpected", "sec-regressed", "sec-missing", "sec-passed",
                                    "sec-expected")]
    assert core == ["sec-unexpected", "sec-regressed", "sec-missing", "sec-passed", "sec-expected"]
    assert ids[-1] == "sec-evidence"


def test_asking_for_expected_failures_unfolds_them(opened: Opened) -> None:
    page = opened.page
    folded = page.locator("#sec-expected > details")
    if folded.count() == 0:  # a report without expected failures says so and folds nothing
        assert page.locator("#sec-expected").inner_text().endswith("None.")
        assert page.locator("tr.claim-row[data-verdict=XFAIL]").count() == 0
        return
    assert not folded.evaluate("d => d.open")
    page.select_option("#filter-verdict", "XFAIL")
    assert folded.evaluate("d => d.open")
    first = folded.locator("tr.claim-row").first
    assert first.is_visible() and first.get_attribute("data-verdict") == "XFAIL"


def test_feature_dashboard_draws_and_hover_shows_activation(opened: Opened) -> None:
    fig = opened.page.locator(".fig[data-kind=feature_dashboard]").first
    if fig.count() == 0:  # a report given by MI_BROWSER_REPORT may have no feature claim
        pytest.skip("the report has no feature dashboard")
    fig.scroll_into_view_if_needed()
    fig.locator(".ctx").first.wait_for()
    assert fig.locator(".fd-head").inner_text().count("firing density") == 1
    contexts = fig.locator(".fd-top .ctx")
    assert contexts.count() > 0
    values = [float(contexts.nth(i).locator(".ctx-v").inner_text()) for i in range(contexts.count())]
    assert values == sorted(values, reverse=True), "top contexts are not sorted by activation"
    assert fig.locator(".fd-hist svg rect").count() > 0, "no histogram bars"
    assert fig.locator("table.logits.pos tr").count() >= 2 and fig.locator("table.logits.neg tr").count() >= 2
    focus = contexts.first.locator(".tok.focus")
    assert focus.count() == 1 and "background" in (focus.get_attribute("style") or "")
    focus.hover()
    readout = fig.locator(":scope > .readout").inner_text()
    act = float(focus.get_attribute("data-act") or "nan")
    shown = re.search(r"activation (\S+)$", readout)
    assert shown, readout
    assert float(shown.group(1)) == pytest.approx(act, rel=1e-3, abs=1e-3)
    assert float(contexts.first.locator(".ctx-v").inner_text()) == pytest.approx(act, rel=1e-3, abs=1e-3)
    if not os.environ.get("MI_BROWSER_REPORT"):
        assert "cat" in readout and fig.locator(".fd-group").count() > 0
    assert opened.errors == []
