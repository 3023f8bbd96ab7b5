"""The HTML report renders in headless Chromium (skipped where chromium is not installed)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from mi_assert.report.figures import figures_to_plain
from mi_assert.report.html import render_html
from mi_assert.report.json_report import build_report
from mi_assert.report.schema import make_record

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(not Path("/usr/bin/chromium").exists(), reason="needs /usr/bin/chromium")
def test_report_renders_in_headless_chromium(tmp_path: Path) -> None:
    ev = {"claim": "L1H0 is an induction head", "metric": "induction score", "estimate": 0.9,
          "low": 0.8, "high": 0.95, "bound": 0.81, "n": 32, "threshold": 0.4, "alpha": 0.05,
          "alternative": "greater", "passed": True, "verdict": "PASS",
          "per_seed": [{"seed": 0, "estimate": 0.9, "low": 0.8, "high": 0.95, "passed": True}]}
    figs = figures_to_plain({"grid": {"kind": "heatmap", "data": [[0.1, 0.9], [0.2, 0.3]]}})
    (tmp_path / "report.html").write_text(render_html(build_report([make_record(ev, {"nodeid": "t::x"}, figs)])))
    shot = tmp_path / "shot.png"
    subprocess.run(["bash", str(ROOT / "scripts" / "screenshot_report.sh"), str(tmp_path / "report.html"),
                    str(shot), "800"], check=True, timeout=120, capture_output=True)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    import matplotlib.image

    pixels = matplotlib.image.imread(str(shot))
    assert pixels.shape[1] == 1280 and pixels.std() > 0.05  # not a blank page
