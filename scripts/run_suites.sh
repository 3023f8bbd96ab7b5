#!/usr/bin/env bash
# The main job: run the bundled suites (suites/) on the zoo and write the report.
#
#   bash scripts/run_suites.sh [extra pytest args, e.g. --mi-compare main -n 2]
#
# Writes reports/<UTC timestamp>/{report.html,report.json,junit.xml,pytest.log} and a copy in
# reports/latest/. Without any suite in suites/ (or with MI_DEMO=1) the report demo suite
# (tests/report/demo_suite/demo_claims.py) runs too. MI_WORKERS=N runs with pytest-xdist -n N.
# Exit status: pytest's (claims that fail, or regress under --mi-compare-fail, make it non-zero).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
. .venv/bin/activate

stamp=$(date -u +%Y%m%dT%H%M%SZ)
out="reports/$stamp"
mkdir -p "$out"

targets=()
while IFS= read -r f; do targets+=("$f"); done < <(find suites -name 'test_*.py' 2>/dev/null | sort)
if [ "${#targets[@]}" -eq 0 ] || [ "${MI_DEMO:-0}" = "1" ]; then
  [ "${#targets[@]}" -eq 0 ] && echo "[run_suites] no suites in suites/ yet: running the report demo suite"
  targets+=("tests/report/demo_suite/demo_claims.py")
fi
workers=()
if [ -n "${MI_WORKERS:-}" ]; then workers=(-n "$MI_WORKERS"); fi

echo "[run_suites] ${#targets[@]} suite file(s) -> $out"
start=$(date +%s)
set +e
python -m pytest "${targets[@]}" -p no:cacheprovider -rfEs \
  --mi-report "$out" --junitxml "$out/junit.xml" "${workers[@]}" "$@" 2>&1 | tee "$out/pytest.log"
rc=${PIPESTATUS[0]}
set -e
end=$(date +%s)
echo "[run_suites] pytest exit status $rc after $((end - start)) s" | tee -a "$out/pytest.log"

# reports/latest: replace by rename so a reader never sees a half-copied folder
rm -rf reports/.latest.tmp
cp -r "$out" reports/.latest.tmp
rm -rf reports/latest
mv reports/.latest.tmp reports/latest
echo "[run_suites] report: $out/report.html (copy: reports/latest/report.html)"
exit "$rc"
