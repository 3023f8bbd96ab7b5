"""A small report with every section the page has, for the browser tests: an unexpected
failure, passes over checkpoints, an expected failure, a composite claim, a counterexample,
an attention pattern, a heatmap, a histogram, a regression against a baseline and a test
skipped for missing weights."""

from __future__ import annotations

from typing import Any

import numpy as np

from mi_assert.report.compare import compare
from mi_assert.report.figures import figures_to_plain
from mi_assert.report.json_report import build_report
from mi_assert.report.schema import make_record
from mi_assert.stats.composite import all_of
from mi_assert.stats.evidence import Evidence, SeedResult

TOKENS = ["<bos>", "The", " cat", " sat", ".", " The", " cat", " sat", "."]


def _ev(claim: str, estimate: float, low: float, high: float, threshold: float, *,
        metric: str = "induction score", spec: str = "planted-induction@s0",
        family: str = "heads", details: dict[str, Any] | None = None) -> Evidence:
    passed = low > threshold
    rows = tuple(SeedResult(seed=s, estimate=estimate, low=low, high=high, bound=low, n=32,
                            passed=passed, threshold=threshold) for s in range(3))
    return Evidence(claim=claim, metric=metric, estimate=estimate, low=low, high=high, bound=low,
                    n=32, threshold=threshold, alpha=0.05, alternative="greater", passed=passed,
                    per_seed=rows, settings={"family": family}, details=details or {},
                    model={"spec": spec, "checkpoint": "h1", "backend": "transformer_lens",
                           "device": "cpu"})


def _induction_pattern() -> np.ndarray:
    n = len(TOKENS)
    pattern = np.zeros((n, n))
    pattern[:, 0] = 1.0
    for q in range(5, n):  # second copy: attend to the token after the earlier occurrence
        pattern[q] = 0.0
        pattern[q, q - 3] = 0.9
        pattern[q, 0] = 0.1
    return pattern


def _record(ev: Evidence, nodeid: str, outcome: str = "passed", checkpoint: dict | None = None,
            figures: dict[str, Any] | None = None, cost: dict | None = None) -> dict[str, Any]:
    rec = make_record(ev.to_dict(), {"nodeid": nodeid, "checkpoint": checkpoint},
                      figures_to_plain(figures or {}))
    rec["test_outcome"] = outcome
    rec["cost"] = cost or {"seconds": 0.5, "forward_passes": 3, "prompts": 96, "peak_rss_mb": 900.0,
                           "rss_growth_mb": 12.0}
    return rec


def records(step_estimates: tuple[float, ...] = (0.2, 0.6, 0.9)) -> list[dict[str, Any]]:
    pattern = {"pattern": {"kind": "pattern", "data": _induction_pattern()[None], "tokens": TOKENS,
                           "labels": ["L1H0"], "title": "L1H0 attention on one held-out prompt"},
               "grid": {"kind": "heatmap", "data": np.arange(12.0).reshape(3, 4) - 5,
                        "title": "patching effect per head", "xlabel": "head", "ylabel": "layer"},
               "samples": {"kind": "hist", "data": [list(np.linspace(0.7, 1.0, 32))] * 2,
                           "labels": ["seed 0", "seed 1"], "threshold": 0.4}}
    out = [_record(_ev("L1H0 is an induction head", 0.95, 0.9, 0.98, 0.4),
                   "suites/planted.py::test_induction_head", figures=pattern),
           _record(_ev("L0H2 is an induction head", 0.05, 0.02, 0.08, 0.4),
                   "suites/planted.py::test_impostor", figures=pattern),
           _record(_ev("L0H1 is a previous-token head", 0.1, 0.05, 0.2, 0.4),
                   "suites/planted.py::test_broken", outcome="failed"),
           _record(all_of([_ev("explained variance >= 0.8", 0.85, 0.82, 0.88, 0.8,
                               metric="explained variance", family="sae"),
                           _ev("L0 > 7.5", 8.0, 7.6, 8.1, 7.5, metric="L0", family="sae")],
                          claim="SAE reconstructs blocks.0.hook_resid_post"),
                   "suites/sae.py::test_sae")]
    ce = {"tokens": [0, 5, 6, 5, 6], "text": None, "margin": -0.33, "found_at": 7,
          "structure": "length 5; a block of 2 token(s) then its copy (repeat length 2, copy "
                       "from position 3)", "batch_shape": [1, 5]}
    search = Evidence(claim="attention_margin(L0H2) holds for every prompt searched",
                      metric="least margin", estimate=-0.5, low=-0.5, high=-0.5, bound=-0.5, n=40,
                      threshold=0.0, alpha=float("nan"), alternative="greater", passed=False,
                      reason="counterexample at example 7: margin -0.33 <= 0", unit="examples searched",
                      settings={"family": "search"}, details={"counterexample": ce},
                      model={"spec": "planted-induction@s0", "checkpoint": "h1"})
    out.append(_record(search, "suites/search.py::test_impostor_search", figures={
        "counterexample": {"kind": "pattern", "data": _induction_pattern()[:5, :5],
                           "tokens": ["0", "5", "6", "5", "6"], "labels": ["L0H2"]}}))
    for k, est in enumerate(step_estimates):
        ck = {"label": f"step{100 * (k + 1)}", "order": k, "series": "attn-only-2l-induction@s0",
              "step": 100 * (k + 1), "spec": f"attn-only-2l-induction@s0:step{100 * (k + 1)}",
              "param_id": f"step{100 * (k + 1)}"}
        ev = _ev("L1H2 is an induction head (trajectory)", est, est - 0.05, est + 0.05, 0.4,
                 spec="attn-only-2l-induction@s0")
        out.append(_record(ev, f"suites/trajectory.py::test_traj[step{100 * (k + 1)}]",
                           outcome="passed" if est - 0.05 > 0.4 else "failed", checkpoint=ck))
    return out


def document() -> dict[str, Any]:
    """The report document: this run compared with a baseline whose last step was higher."""
    run = records()
    baseline = records((0.2, 0.6, 0.99))
    meta = {"mi_assert": "test", "missing_weights": [
        {"nodeid": "suites/gpt2.py::test_gpt2_induction", "model": "gpt2", "outcome": "skipped"}]}
    return build_report(run, meta, compare(baseline, run, {}, "main"))
