"""``scripts/bench_families_cpu.py --small`` runs and its table has a row for every case.

The dry run: a tiny model, every case in one process (``--inline``), one repeat; seconds.
The full table (GPT-2-small shape, a subprocess per case) is in docs/benchmarks.md.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "bench_families_cpu.py"


def _script_module():
    spec = importlib.util.spec_from_file_location("bench_families_cpu", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_small_dry_run_has_every_case():
    bench = _script_module()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1"}
    out = subprocess.run([sys.executable, str(SCRIPT), "--small", "--inline", "--repeats", "1"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
                         check=False)
    assert out.returncode == 0, out.stderr[-4000:]
    rows = [line for line in out.stdout.splitlines() if line.startswith("| ")]
    assert rows[0].startswith("| family | case | wall s | × equivalent | × forward (logits) |")
    by_case = {line.split("|")[2].strip().strip("`"): line for line in rows[1:]}
    assert set(bench.CASES) <= set(by_case), set(bench.CASES) - set(by_case)
    for family, ours, equivalent, _ in bench.ROWS:
        cells = [c.strip() for c in by_case[ours].split("|")[1:-1]]
        assert cells[0] == family
        seconds, x_equivalent, x_forward = float(cells[2]), cells[3], float(cells[4])
        assert seconds > 0 and x_forward > 0
        assert float(x_equivalent.strip("*")) > 0  # a ratio to its equivalent's row
        assert by_case[equivalent].split("|")[4].strip() == "1.00"
    for forward in bench.FORWARDS.values():
        assert by_case[forward].split("|")[5].strip() == "1.00"
