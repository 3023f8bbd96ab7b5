#!/usr/bin/env bash
# Run the project's own tests (installs first if needed). Extra args go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
. .venv/bin/activate
set +e
python -m pytest tests -q -p no:cacheprovider -o mi_summary=false "$@"
rc=$?
set -e
# pytest exits 5 when nothing was collected: treat as a failure of the test command itself.
if [ "$rc" -eq 5 ]; then echo "no tests collected" >&2; exit 1; fi
exit "$rc"
