#!/usr/bin/env bash
# The benchmark venv for benchmarks/edges_vs_autocircuit.py: auto-circuit 1.0.1 (with its tracr,
# jax, plotly and kaleido) next to mi-assert, apart from .venv so that its pins cannot move the
# project's. Idempotent; torch comes from the pinned CPU build unless one is installed.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv-autocircuit/bin/python ] || "$PY" -m venv .venv-autocircuit
. .venv-autocircuit/bin/activate
python -c "import torch" 2>/dev/null || pip install -q torch==2.13.0
pip install -q auto-circuit==1.0.1 attrs "transformer-lens==$(.venv/bin/python -c 'import importlib.metadata as m; print(m.version("transformer-lens"))' 2>/dev/null || echo 3.9.0)" 2>&1 | grep -v "^WARNING: Location" || true
pip install -q -e . 2>&1 | grep -v "^WARNING: Location" || true
python -c "import auto_circuit, mi_assert; print('[setup] auto-circuit venv ready')"
