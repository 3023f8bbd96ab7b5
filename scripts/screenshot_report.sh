#!/usr/bin/env bash
# Render an mi-assert HTML report in headless Chromium and save a PNG screenshot.
#
#   bash scripts/screenshot_report.sh [REPORT_HTML] [OUT_PNG] [HEIGHT]
#
# Defaults: reports/latest/report.html -> reports/latest/screenshot.png, 1280 x 2000 pixels.
# Needs Debian's chromium (apt-get install -y chromium). Network features are disabled: the
# report must render from the file alone (inline CSS, base64 images).
set -euo pipefail
cd "$(dirname "$0")/.."
html=${1:-reports/latest/report.html}
png=${2:-$(dirname "$html")/screenshot.png}
height=${3:-2000}
browser=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$browser" ]; then
  echo "chromium not found: apt-get install -y chromium" >&2
  exit 2
fi
if [ ! -f "$html" ]; then
  echo "no report at $html: run bash scripts/run_suites.sh first" >&2
  exit 2
fi
abs_html=$(cd "$(dirname "$html")" && pwd)/$(basename "$html")
abs_png=$(cd "$(dirname "$png")" && pwd)/$(basename "$png")
"$browser" --headless --no-sandbox --disable-gpu --disable-background-networking \
  --disable-component-update --no-first-run --hide-scrollbars \
  --screenshot="$abs_png" --window-size=1280,"$height" "file://$abs_html" 2>/dev/null
echo "screenshot: $png"
