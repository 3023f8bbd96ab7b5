"""The engine's whole output on fixed inputs, pinned: every field of every Evidence, the text a
failing claim prints, every refusal's message.

The other engine tests check properties (size at the threshold, worst row decides, Holm
levels); this one pins what a user reads, so that a change to a report field, a message or a
number no property covers shows up as a diff to review. After an intended change:

    MI_ASSERT_UPDATE_SNAPSHOTS=1 python -m pytest tests/stats/test_engine_snapshot.py

rewrites ``snapshots/engine.json``; review its diff like code. A case missing from the file
fails (it is never written silently).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mi_assert.comparison import fmt, holds, pair, relation, side
from mi_assert.stats import (
    AUROC,
    ClaimSpec,
    CountWeighted,
    Evidence,
    Fixed,
    Mean,
    RatioOfMeans,
    Resampled,
    all_of,
    bootstrap,
    bootstrap_mean,
    claim_options,
    holm_adjust,
    holm_family,
    undefined_claim,
)
from mi_assert.stats.multiple import holm_alphas
from mi_assert.stats.options import check_count, check_int_list, check_min_prompts, check_quorum
from mi_assert.verdict import fail, raise_if_failed
from tests.snapshot import check_case, differences, raised, snapshot_file

SNAPSHOT = Path(__file__).parent / "snapshots" / "engine.json"


def _draw(seed: int, n: int, loc: float = 0.0, scale: float = 1.0) -> np.ndarray:
    return np.random.default_rng(seed).normal(loc, scale, n)


def _spec(samples: Any, threshold: float, **kw: Any) -> ClaimSpec:
    kw.setdefault("claim", "score clears threshold")
    kw.setdefault("metric", "score")
    kw.setdefault("n_resamples", 400)
    return ClaimSpec(samples=samples, threshold=threshold, **kw)


def _figures(ev: Evidence) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, fig in ev.figures.items():
        entry: dict[str, Any] = {}
        for key, value in fig.items():
            if key == "data":
                arrays = [np.asarray(v, dtype=float) for v in value]
                entry["data"] = [[int(a.size), float(a.sum())] for a in arrays]
            else:
                entry[key] = value
        out[name] = entry
    return out


def _evidence(ev: Evidence) -> dict[str, Any]:
    return {"dict": ev.to_dict(), "table": ev.table(), "repr": repr(ev),
            "figures": _figures(ev), "members": [m.table() for m in ev.members]}


def _result(res: Any) -> dict[str, Any]:
    out = {name: getattr(res, name) for name in
           ("estimate", "low", "high", "bound", "n", "p_value", "method", "threshold",
            "alternative", "alpha")}
    out["passes"] = res.passes() if res.threshold is not None else raised(res.passes)
    return out


# ---- the cases: each returns JSON-able data --------------------------------------------------

def case_mean_pass() -> Any:
    return _evidence(_spec({0: _draw(0, 30, 0.6, 0.2)}, 0.5).evaluate())


def case_mean_fail_less() -> Any:
    return _evidence(_spec({0: _draw(1, 20, 0.3, 0.3)}, 0.25, alternative="less").evaluate())


def case_three_seeds_worst_row() -> Any:
    samples = {s: _draw(10 + s, 24, 0.55 + 0.05 * s, 0.2) for s in range(3)}
    return _evidence(_spec(samples, 0.45, settings={"note": "three seeds"},
                           model_info={"name": "toy"}, details={"why": "a\nmultiline"},
                           hint="look at seed 0").evaluate(0.1))


def case_quorum() -> Any:
    samples = {s: _draw(20 + s, 16, [0.2, 0.7, 0.8][s], 0.2) for s in range(3)}
    return _evidence(_spec(samples, 0.5, quorum=2).evaluate())


def case_quorum_fraction() -> Any:
    samples = {s: _draw(30 + s, 16, [0.2, 0.3, 0.8][s], 0.2) for s in range(3)}
    return _evidence(_spec(samples, 0.5, quorum=0.5).evaluate())


def case_model_seeds_and_labels() -> Any:
    samples = {(s, m, lab): _draw(40 + 7 * s + 3 * m + len(lab), 12, 1.0, 0.5)
               for s in range(2) for m in range(2) for lab in ("short", "long")}
    return _evidence(_spec(samples, 0.5, unit="pairs").evaluate())


def case_callable_samples() -> Any:
    return _evidence(_spec(lambda seed: {"a": _draw(seed, 10, 2.0), "b": _draw(seed + 9, 10, 1.5)},
                           0.0, seeds=[3, 4]).evaluate())


def case_repeated_seeds_merged() -> Any:
    data = _draw(5, 16, 0.7, 0.2)
    return _evidence(_spec({0: data, 1: data.copy(), 2: data.copy()}, 0.5).evaluate())


def case_repeated_seeds_of_two_model_seeds() -> Any:
    a, b = _draw(50, 16, 0.7, 0.2), _draw(51, 16, 0.8, 0.2)
    samples = {(0, 0): a, (1, 0): a.copy(), (0, 1): b, (1, 1): b.copy(), (2, 1): b.copy()}
    return _evidence(_spec(samples, 0.5).evaluate())


def case_ratio_of_means() -> Any:
    rng = np.random.default_rng(7)
    den = rng.uniform(1.0, 2.0, 20)
    num = den * rng.uniform(0.6, 1.0, 20)
    one_minus = RatioOfMeans(num, den, one_minus=True)
    return [_evidence(_spec({0: RatioOfMeans(num, den)}, 0.7, value_range=(-5, 5)).evaluate()),
            _evidence(_spec({0: one_minus}, 0.4, alternative="less").evaluate())]


def case_auroc() -> Any:
    rng = np.random.default_rng(8)
    stat = AUROC(rng.normal(1.0, 1.0, 12), rng.normal(0.0, 1.0, 14))
    return _evidence(_spec({0: stat}, 0.6, value_range=(0.0, 1.0), metric="AUROC").evaluate())


def case_auroc_perfect_separation() -> Any:
    stat = AUROC(np.linspace(1.0, 2.0, 24), np.linspace(-1.0, 0.0, 24))
    return {"constant": stat.constant(),
            "claim": _evidence(_spec({0: stat}, 0.8, value_range=(0.0, 1.0), metric="AUROC").evaluate())}


def case_fingerprints() -> Any:
    """The data identities that decide which seeds repeat the same data."""
    rng = np.random.default_rng(60)
    a, b, c = rng.normal(size=10), rng.normal(size=10), rng.uniform(1, 2, 10)
    ids = [i // 2 for i in range(10)]
    stats = {"mean": Mean(a), "mean ids": Mean(a, units=ids), "mean range ids": Mean(a, units=range(10)),
             "mean features": Mean(a, unit="features"), "constant mean": Mean(np.ones(10)),
             "ratio": RatioOfMeans(a, c), "one minus": RatioOfMeans(a, c, one_minus=True),
             "auroc": AUROC(a, b), "auroc pos ids": AUROC(a, b, positive_units=range(10)),
             "auroc neg ids": AUROC(a, b, negative_units=range(10)),
             "auroc both ids": AUROC(a, b, positive_units=ids, negative_units=range(10)),
             "fixed": Fixed(0.5), "fixed with source": Fixed(0.5, n_units=10, source="x")}
    return {name: repr(stat.fingerprint()) for name, stat in stats.items()}


def case_count_weighted() -> Any:
    x = _draw(9, 15, 0.8, 0.3)
    stat = CountWeighted(lambda w: (w * x).sum(-1) / w.sum(-1), len(x), name="weighted mean")
    return _evidence(_spec({0: stat}, 0.5).evaluate())


def case_clustered_mean() -> Any:
    x = _draw(11, 24, 0.4, 0.3)
    units = [i // 2 for i in range(24)]
    return _evidence(_spec({0: Mean(x, units=units, unit="sentences")}, 0.2,
                           unit="sentences").evaluate())


def case_zero_variance() -> Any:
    bounded = _spec({0: np.ones(16)}, 0.8, value_range=(0.0, 1.0)).evaluate()
    unbounded = _spec({0: np.full(10, 2.5)}, 2.0).evaluate()
    upper = _spec({0: np.zeros(12)}, 0.3, alternative="less", value_range=(0.0, 1.0)).evaluate()
    return [_evidence(bounded), _evidence(unbounded), _evidence(upper)]


def case_fixed() -> Any:
    return [_evidence(_spec({0: Fixed(0.93, n_units=8, unit="weights")}, 0.9).evaluate()),
            _evidence(_spec({0: Fixed(0.2)}, 0.3, alternative="less", min_units=1).evaluate()),
            raised(lambda: _spec({0: Fixed(0.93, n_units=4)}, 0.9).evaluate())]


def case_intervals() -> Any:
    data = np.random.default_rng(12).exponential(1.0, 14)
    return {interval: _evidence(_spec({0: data}, 0.5, interval=interval).evaluate())
            for interval in ("calibrated", "BCa", "expanded", "studentized")}


def case_all_of() -> Any:
    a = _spec({0: _draw(13, 20, 0.9, 0.1)}, 0.5, claim="first", metric="m1")
    b = _spec({0: _draw(14, 20, 0.3, 0.1)}, 0.5, claim="second", metric="m2",
              alternative="less", unit="features")
    c = _spec({0: _draw(15, 20, 0.52, 0.2)}, 0.5, claim="third", metric="m3")
    ok = all_of([a, b], claim="both", settings={"k": 1}, model_info={"m": "x"},
                details={"d": 2}, figures={"f": {"kind": "line", "data": [[1.0, 2.0]]}}, hint="h")
    bad = all_of([a, b, c], claim="three", alpha=0.1)
    single = all_of([a], claim="only one", settings={"s": 1}, details={"d": 1}, hint="single")
    from_evidence = all_of([a.evaluate(), b], claim="evidence member")
    return [_evidence(ok), _evidence(bad), _evidence(single), _evidence(from_evidence)]


def case_holm() -> Any:
    members = [_spec({0: _draw(16 + i, 24, mu, 0.3)}, 0.5, claim=f"head {i}")
               for i, mu in enumerate((1.2, 0.75, 0.66, 0.4))]
    passing = [_spec({0: _draw(30 + i, 24, 1.5, 0.3)}, 0.5, claim=f"strong {i}") for i in range(3)]
    return [_evidence(holm_family(members, claim="every head")),
            _evidence(holm_family(passing, claim="strong heads", hint="hh")),
            _evidence(holm_family(members[:1], claim="one head"))]


def case_undefined() -> Any:
    ev = undefined_claim("ratio", "recovery", "clean-corrupted gap is zero", threshold=0.5,
                         alternative="less", alpha=0.1, n=12, unit="pairs",
                         settings={"a": 1}, model_info={"m": 1}, details={"d": 1})
    mixed = all_of([ev, _spec({0: _draw(40, 20, 1.0, 0.1)}, 0.5, claim="fine")], claim="mixed")
    return [_evidence(ev), _evidence(mixed)]


def case_bootstrap_functions() -> Any:
    x = _draw(41, 18, 0.3, 0.5)
    out = {"mean": _result(bootstrap_mean(x, threshold=0.0, n_resamples=300, seed=2)),
           "less": _result(bootstrap_mean(x, threshold=0.6, alternative="less", n_resamples=300,
                                          seed=2, alpha=0.1)),
           "ranged": _result(bootstrap_mean(np.ones(12), threshold=0.5, value_range=(0.0, 1.0))),
           "stat": _result(bootstrap(Mean(x), threshold=0.1, n_resamples=300, seed=3)),
           "no threshold": _result(bootstrap_mean(x, n_resamples=300, seed=4))}
    dist = Resampled(Mean(x), seed=5, n_resamples=300)
    out["levels"] = [_result(dist.result(0.0, "greater", a)) for a in (0.2, 0.05, 0.01)]
    return out


def case_verdict_messages() -> Any:
    failing = _spec({0: _draw(42, 16, 0.1, 0.2), 1: _draw(43, 16, 0.6, 0.2)}, 0.4,
                    hint="try heads L1H2").evaluate()
    passing = _spec({0: _draw(44, 16, 0.9, 0.1)}, 0.4).evaluate()
    return {"fail": raised(lambda: fail(failing)),
            "fail with hint": raised(lambda: fail(failing, "another hint")),
            "raise_if_failed": raised(lambda: raise_if_failed(failing)),
            "returned": raise_if_failed(passing).to_dict()}


def case_comparison_text() -> Any:
    values = (0.5, 0.4999999, 1e-5, 123456.0, float("nan"), float("inf"), None, "x", -0.0)
    return {"fmt": [fmt(v) for v in values] + [fmt(0.123456, 5)],
            "pair": [list(pair(a, b)) for a, b in ((0.5, 0.5000001), (0.1, 0.2), (1.0, 1.0))],
            "holds": [holds(b, t, alt) for b, t, alt in
                      ((0.6, 0.5, "greater"), (0.4, 0.5, "greater"), (0.4, 0.5, "less"),
                       (0.6, 0.5, "less"), (0.5, 0.5, "greater"), (float("nan"), 0.5, "less"))],
            "relation": [relation(0.6, 0.5, "greater"), relation(0.6, 0.5, "less", "not tested"),
                         relation(0.5, 0.5, "less")],
            "side": [side(0.05, "greater"), side(0.1, "less"), side(0.025, "greater")]}


def case_holm_helpers() -> Any:
    return {"adjust": holm_adjust([0.01, 0.04, 0.03, 0.2]), "adjust one": holm_adjust([0.3]),
            "alphas": holm_alphas(4, 0.05), "alphas one": holm_alphas(1, 0.1)}


def case_options() -> Any:
    opts = claim_options(seeds=[0, 1, 2], model_seeds=[3], quorum=2, min_prompts=12,
                         n_resamples=500, alpha=0.1)
    return {"options": {k: v for k, v in vars(opts).items()},
            "defaults": dict(vars(claim_options())),
            "int list": [check_int_list([1, 2], "seeds"), check_int_list(None, "x", allow_none=True),
                         check_int_list(3, "seeds")],
            "quorum": [check_quorum(None), check_quorum(2, 3), check_quorum(0.5)],
            "min_prompts": check_min_prompts(9), "count": check_count(3, "n"),
            "edges": [check_min_prompts(2), check_quorum(3, 3), check_quorum(1.0), check_quorum(7)],
            "refused": [raised(fn) for fn in (
                lambda: check_min_prompts(True), lambda: check_min_prompts("3"),
                lambda: check_min_prompts(1), lambda: check_quorum(0.0), lambda: check_quorum(0),
                lambda: check_quorum(0, 3), lambda: check_quorum("x"), lambda: check_quorum(True),
                lambda: check_quorum(4, 3), lambda: check_int_list(None, "seeds"),
                lambda: check_int_list([1, 1], "seeds"), lambda: check_int_list([True], "seeds"),
                lambda: check_int_list(3.5, "seeds"))]}


def case_refusals() -> Any:
    good = _draw(45, 16)
    cases: dict[str, Callable[[], Any]] = {
        "too few units": lambda: _spec({0: good[:5]}, 0.0).evaluate(),
        "repeated values are units": lambda: _spec({0: np.repeat(good[:4], 4)}, 0.0).evaluate(),
        "auroc stratum": lambda: _spec({0: AUROC(good[:3], good)}, 0.5,
                                       value_range=(0, 1)).evaluate(),
        "threshold out of range": lambda: _spec({0: good}, 1.5, value_range=(0, 1)).evaluate(),
        "threshold nan": lambda: _spec({0: good}, float("nan")).evaluate(),
        "threshold text": lambda: _spec({0: good}, "high").evaluate(),
        "alpha": lambda: _spec({0: good}, 0.0).evaluate(0.7),
        "alpha text": lambda: _spec({0: good}, 0.0).evaluate("a"),
        "alternative": lambda: _spec({0: good}, 0.0, alternative="two-sided").evaluate(),
        "interval": lambda: _spec({0: good}, 0.0, interval="percentile").evaluate(),
        "n_resamples": lambda: _spec({0: good}, 0.0, n_resamples=10).evaluate(),
        "quorum too big": lambda: _spec({0: good, 1: good + 1}, 0.0, quorum=3).evaluate(),
        "quorum bool": lambda: _spec({0: good}, 0.0, quorum=True).evaluate(),
        "quorum bad": lambda: _spec({0: good}, 0.0, quorum=1.5).evaluate(),
        "quorum over repeats": lambda: _spec({0: good, 1: good.copy()}, 0.0, quorum=2).evaluate(),
        "callable without seeds": lambda: _spec(lambda s: good, 0.0).evaluate(),
        "samples type": lambda: _spec([good], 0.0).evaluate(),
        "no rows": lambda: _spec({}, 0.0).evaluate(),
        "duplicate row": lambda: _spec({0: good, (0, None): good}, 0.0).evaluate(),
        "bad row key": lambda: _spec({"seed": good}, 0.0).evaluate(),
        "nan values": lambda: _spec({0: np.r_[good, np.nan]}, 0.0).evaluate(),
        "2-d values": lambda: _spec({0: good.reshape(4, 4)}, 0.0).evaluate(),
        "column values": lambda: _spec({0: good.reshape(16, 1)}, 0.0).evaluate(),
        "ratio lengths": lambda: RatioOfMeans(good, good[:3]),
        "empty composite": lambda: all_of([], claim="x"),
        "composite member": lambda: all_of([3], claim="x"),
        "empty family": lambda: holm_family([], claim="x"),
        "bootstrap_mean empty": lambda: bootstrap_mean([]),
        "bootstrap_mean alpha": lambda: bootstrap_mean(good, alpha=2),
        "options seeds": lambda: claim_options(seeds=[]),
        "options seeds text": lambda: claim_options(seeds="0,1"),
        "options quorum": lambda: claim_options(seeds=[0, 1], quorum=5),
        "options min_prompts": lambda: claim_options(min_prompts=1),
        "options count": lambda: check_count(0, "n_prompts"),
        "options count text": lambda: check_count("3", "n_prompts"),
        "count weighted empty": lambda: CountWeighted(lambda w: w.sum(-1), 0),
    }
    return {name: raised(fn) for name, fn in cases.items()}


CASES: dict[str, Callable[[], Any]] = {
    name[len("case_"):]: fn for name, fn in globals().items()
    if name.startswith("case_") and callable(fn)}


snapshot = snapshot_file(SNAPSHOT)


@pytest.mark.parametrize("name", sorted(CASES))
def test_engine_output_matches_snapshot(name: str, snapshot: dict[str, Any]) -> None:
    check_case(name, CASES[name], snapshot)


def test_snapshot_has_no_stale_cases(snapshot: dict[str, Any]) -> None:
    assert set(snapshot) <= set(CASES), f"snapshot cases without a test: {set(snapshot) - set(CASES)}"


def test_snapshot_comparison_detects_changes() -> None:
    want = {"a": [1.0, "x", {"b": True}], "n": 3}
    assert differences(want, want, "w") == []
    assert differences({"a": [1.0 + 1e-4, "x", {"b": True}], "n": 3}, want, "w")
    assert differences({"a": [1.0, "y", {"b": True}], "n": 3}, want, "w")
    assert differences({"a": [1.0, "x", {"b": False}], "n": 3}, want, "w")
    assert differences({"a": [1.0, "x"], "n": 3}, want, "w")
    assert differences({"a": [1.0, "x", {"b": True}], "n": 3.0}, want, "w")
    assert differences({"a": [1.0, "x", {"b": True}]}, want, "w")
