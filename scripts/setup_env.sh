#!/usr/bin/env bash
# Create .venv and install mi-assert with everything it needs. Idempotent.
# CPU-only hosts get the pinned CPU build of torch first (an unpinned torch would pull a
# multi-GB CUDA build); hosts that already have a torch keep it (the venv sees system packages).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  if "$PY" -c "import torch" 2>/dev/null; then
    echo "[setup] using the torch already installed: $("$PY" -c 'import torch; print(torch.__version__)')"
    "$PY" -m venv --system-site-packages .venv
  else
    "$PY" -m venv .venv
  fi
fi
. .venv/bin/activate
if ! python -c "import torch" 2>/dev/null; then
  echo "[setup] installing torch==2.13.0 (CPU build)"
  pip install -q torch==2.13.0
fi
if ! python -c "import mi_assert, transformer_lens, nnsight, sae_lens, pytest_benchmark, xdist, mypy, networkx, playwright" 2>/dev/null; then
  echo "[setup] installing mi-assert and its dependencies"
  pip install -q -e ".[dev]" 2>&1 | grep -v "^WARNING: Location" || true
fi
python -c "import mi_assert, torch; print('[setup] mi-assert', mi_assert.__version__, 'torch', torch.__version__)"
