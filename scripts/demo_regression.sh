#!/usr/bin/env bash
# A checkpoint that breaks a known circuit, caught by the baseline diff:
#   1. save a planted model whose L1H0 is an induction head; record baseline "demo" on it;
#   2. overwrite the checkpoint with L1H0's queries scaled down (the head no longer induces);
#   3. rerun with --mi-compare demo: the induction claim is REGRESSED, the previous-token head ok.
# Writes OUT/report.html (default /tmp/mi-regression-demo/report); exit status is pytest's (1).
set -euo pipefail
cd "$(dirname "$0")/.."
. .venv/bin/activate
out=${1:-/tmp/mi-regression-demo}
mkdir -p "$out"
save() { python -c "from pathlib import Path; from tests.report.helpers import save_planted_checkpoint; save_planted_checkpoint(Path('$out/ckpt'), q_scale=$1)"; }
run() { python -m pytest tests/report/demo_suite/regression_demo.py -q -p no:cacheprovider \
  --mi-model "$out/ckpt" --mi-baseline-dir "$out/baselines" "$@"; }
save 1.0
run --mi-save-baseline demo --mi-baseline-overwrite
save 0.3
set +e
run --mi-compare demo --mi-report "$out/report"
rc=$?
set -e
echo "[demo_regression] report: $out/report/report.html (pytest exit $rc: the regressed claim fails)"
exit "$rc"
