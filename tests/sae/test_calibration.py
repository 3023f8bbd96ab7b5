"""Calibration at default thresholds: >= 100 draws of true SAEs pass, broken SAEs raise.

50 synthetic data seeds (128 dims / 256 features / 3 active: the small calibration shape, see
docs/sae.md) x {true, random, decoder-shuffled} SAEs: 100 true-claim draws, 150 false-claim draws.
"""

from __future__ import annotations

import time

from mi_assert.sae.calibration import format_table, run_calibration


def test_calibration_default_thresholds():
    start = time.perf_counter()
    rows = run_calibration(n_seeds=50, n_samples=256)
    table = format_table(rows)
    print(f"\n{table}\n({time.perf_counter() - start:.1f}s)")
    true_rows = [r for r in rows if r.should_pass]
    false_rows = [r for r in rows if not r.should_pass]
    n_true = sum(r.n for r in true_rows)
    n_false = sum(r.n for r in false_rows)
    assert n_true >= 100 and n_false >= 100
    tpr = sum(r.n_passed for r in true_rows) / n_true
    fpr = sum(r.n_passed for r in false_rows) / n_false
    assert tpr >= 0.99, table
    assert fpr <= 0.01, table
    for r in rows:  # and per claim, not only pooled
        assert (r.rate >= 0.99) if r.should_pass else (r.rate <= 0.01), table
