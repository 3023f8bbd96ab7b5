#!/usr/bin/env bash
# Build kjv-gpt2-4l from scratch: corpus -> tokenizer + model (both training phases) -> tuned
# lens -> SAE -> manifest. About 90 minutes on one CPU core; the results are committed, so CI
# never runs this. Needs Debian's corpus packages: apt-get install -y bible-kjv
set -euo pipefail
cd "$(dirname "$0")/.."
. .venv/bin/activate
export OMP_NUM_THREADS=1
python -m mi_assert.zoo.natural.train "$@"
python -m mi_assert.zoo.natural.lenses
python -m mi_assert.sae train kjv-gpt2-4l-l2-resid
python -m mi_assert.zoo.natural.manifest write
python -m mi_assert.zoo.natural.manifest check
