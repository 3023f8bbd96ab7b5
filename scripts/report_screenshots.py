"""Screenshots of a report in headless chromium (Playwright, Debian's chromium binary), and the
page's size and open time.

    python scripts/report_screenshots.py reports/latest/report.html docs/images

Writes ``report_top.png`` (the verdict and the first rows), ``report_attention.png`` (a card
with an attention view, a token hovered), ``report_diff.png`` (the baseline diff, when the run
was compared), ``report_counterexample.png`` and ``report_circuit.png`` (when the report has
them), and prints the file size and the time from navigation to the load event (median of 5).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
from pathlib import Path
from typing import Any


def _chromium() -> str:
    for candidate in (os.environ.get("MI_CHROMIUM"), shutil.which("chromium"),
                      shutil.which("chromium-browser")):
        if candidate:
            return candidate
    sys.exit("needs chromium: apt-get install -y chromium (or set MI_CHROMIUM)")


def _shot(page: Any, selector: str, path: Path, *, hover: str | None = None) -> bool:
    target = page.locator(selector).first
    if target.count() == 0:
        print(f"  (no {selector}: {path.name} not taken)")
        return False
    target.scroll_into_view_if_needed()
    if hover:
        tokens = target.locator(hover)
        tokens.first.wait_for()
        tokens.nth(min(tokens.count() - 1, tokens.count() * 3 // 4)).hover()
    target.screenshot(path=str(path))
    print(f"  {path}")
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("report", type=Path)
    parser.add_argument("out", type=Path)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    args.out.mkdir(parents=True, exist_ok=True)
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
        browser.close()


if __name__ == "__main__":
    main()
