"""``benchmarks/llama_sweep_gpu.py --small``: the GPU benchmark's pipeline runs on a tiny
Llama-shaped model on the CPU and writes every figure it promises (the real run needs a GPU)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_small_dry_run_writes_every_figure(tmp_path: Path):
    out = tmp_path / "llama.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    run = subprocess.run([sys.executable, "-W", "ignore", str(ROOT / "benchmarks" / "llama_sweep_gpu.py"),
                          "--small", "--repeat", "1", "--nnsight-layers", "0", "2",
                          "--json", str(out)], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    result = json.loads(out.read_text())
    for key in ("ours_seconds", "floor_seconds", "over_floor", "bf16_relative_err",
                "nnsight_seconds_all_layers", "vs_nnsight", "nnsight_max_abs_diff"):
        assert key in result, key
    assert result["over_floor"] > 1.0  # nothing beats the floor
    assert result["bf16_relative_err"] < 0.04  # the kernels' bf16 tolerance
    # nnsight in bf16 and our bf16 sweep compute the same patching: bf16-close
    assert result["nnsight_max_abs_diff"] < 0.04 * result["logit_scale"]
    assert result["nnsight_layers"] == [0, 2]
