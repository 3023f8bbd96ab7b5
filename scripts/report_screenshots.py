"""Screenshots of a report in headless chromium (Playwright, Debian's chromium binary), and the
page's size and open time.

    python scripts/report_screenshots.py reports/latest/report.html docs/images
    python scripts/report_screenshots.py --demo docs/images

Writes ``report_top.png`` (the verdict and the first rows), ``report_attention.png`` (a card
with an attention view, a token hovered), ``report_diff.png`` (the baseline diff, when the run
was compared), ``report_counterexample.png``, ``report_circuit.png`` and
``report_feature_dashboard.png`` (an SAE feature dashboard, its top token hovered) when the
report has them, and prints the file size and the time from navigation to the load event
(median of 5). ``--demo`` writes the browser tests' synthetic report (every section and a
feature dashboard, :func:`tests.report.test_report_browser.dashboard_document`) to a temporary
folder and takes the screenshots from it; ``--only NAME`` (repeatable) writes only the named
screenshots, e.g. ``--demo --only report_feature_dashboard.png docs/images``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any


def _chromium() -> str:
    for candidate in (os.environ.get("MI_CHROMIUM"), shutil.which("chromium"),
                      shutil.which("chromium-browser")):
        if candidate:
            return candidate
    sys.exit("needs chromium: apt-get install -y chromium (or set MI_CHROMIUM)")


def _demo_report(folder: Path) -> Path:
    """The browser tests' synthetic report (with a feature dashboard), written to ``folder``."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from mi_assert.report.json_report import write_report
    from tests.report.test_report_browser import dashboard_document

    return write_report(folder, dashboard_document())[1]


ONLY: set[str] = set()


def _shot(page: Any, selector: str, path: Path, *, hover: str | None = None,
          hover_first: bool = False) -> bool:
    if ONLY and path.name not in ONLY:
        return False
    target = page.locator(selector).first
    if target.count() == 0:
        print(f"  (no {selector}: {path.name} not taken)")
        return False
    target.scroll_into_view_if_needed()
    if hover:
        tokens = target.locator(hover)
        tokens.first.wait_for()
        tokens.nth(0 if hover_first else min(tokens.count() - 1, tokens.count() * 3 // 4)).hover()
    target.screenshot(path=str(path))
    print(f"  {path}")
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("report", type=Path, nargs="?",
                        help="a report.html (omit with --demo)")
    parser.add_argument("out", type=Path)
    parser.add_argument("--demo", action="store_true",
                        help="screenshot the synthetic report of the browser tests instead")
    parser.add_argument("--only", action="append", default=[], metavar="NAME",
                        help="write only this screenshot (repeatable), e.g. report_top.png")
    args = parser.parse_args()
    ONLY.update(args.only)
    if args.demo == (args.report is not None):
        parser.error("give a report.html or --demo, not both")
    from playwright.sync_api import sync_playwright

    args.out.mkdir(parents=True, exist_ok=True)
    if args.demo:
        args.report = _demo_report(Path(tempfile.mkdtemp(prefix="mi-report-demo-")))
    url = args.report.resolve().as_uri()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=_chromium(), args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        times = []
        for _ in range(5):
            page.goto(url)
            page.wait_for_load_state("load")
            times.append(page.evaluate(
                "performance.getEntriesByType('navigation')[0].loadEventEnd"))
        print(f"{args.report}: {args.report.stat().st_size / 1e6:.2f} MB, opens in "
              f"{statistics.median(times):.0f} ms (load event, median of 5)")
        if not ONLY or "report_top.png" in ONLY:
            page.screenshot(path=str(args.out / "report_top.png"))
            print(f"  {args.out / 'report_top.png'}")
        page.evaluate("document.querySelectorAll('#sec-expected > details').forEach(d => d.open = true)")
        page.evaluate("miAssertDrawAll()")  # every figure, not only those near the viewport
        # element shots: the sticky filter bar would cover the top of each element
        page.add_style_tag(content="nav.filters{position:static}")
        _shot(page, ".card:has(.fig[data-kind=pattern])", args.out / "report_attention.png",
              hover=".tok")
        _shot(page, "#sec-diff", args.out / "report_diff.png")
        _shot(page, ".card:has(.counterexample)", args.out / "report_counterexample.png", hover=".tok")
        _shot(page, ".card:has(.circuit[data-svg])", args.out / "report_circuit.png")
        _shot(page, ".fig[data-kind=feature_dashboard]", args.out / "report_feature_dashboard.png",
              hover=".fd-top .tok.focus", hover_first=True)
        _shot(page, ".card:has-text('tuned lens beats the logit lens')", args.out / "report_lens_profile.png")
        browser.close()


if __name__ == "__main__":
    main()
