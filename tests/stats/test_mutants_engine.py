"""Tests that kill the surviving mutants of the statistics engine (mi_assert/stats/:
bootstrap, statistic, claims, composite, evidence, options, multiple); docs/mutation.md lists
each survivor and the test that kills it.

They test invariants that hold whichever interval the bootstrap uses (bound side, alpha
monotonicity, the clears rule, row aggregation, Holm levels, minimum units, the evidence
contract), plus exact values where a function has one.
"""

from __future__ import annotations

import inspect
import math
import warnings

import numpy as np
import pytest
from scipy import stats as sps

from mi_assert.errors import MiAssertInputError
from mi_assert.stats import (
    AUROC,
    ClaimSpec,
    CountWeighted,
    Fixed,
    Mean,
    RatioOfMeans,
    RowStatistic,
    all_of,
    bootstrap,
    bootstrap_mean,
    holm_adjust,
    holm_family,
    undefined_claim,
)
from mi_assert.stats.bootstrap import clears
from mi_assert.stats.claims import quorum_count, resolve_samples, standardised_margin
from mi_assert.stats.composite import member_margin
from mi_assert.stats.evidence import Evidence
from mi_assert.stats.multiple import holm_alphas
from mi_assert.stats.options import check_count
from mi_assert.stats.statistic import RATIO_CLIP


def _normal_sample(z: float, n: int = 60, sd: float = 1.0, shift: float = 0.0) -> np.ndarray:
    """A symmetric sample whose mean lies ``z`` standard errors above ``shift``."""
    q = sps.norm.ppf((np.arange(n) + 0.5) / n)
    q = (q - q.mean()) / q.std()
    return shift + z * sd / np.sqrt(n) + sd * q


# --- multiple: Holm ------------------------------------------------------------------------


def test_holm_adjust_multiplies_by_the_rank_and_keeps_the_order():
    assert holm_adjust([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm_adjust([0.04, 0.001]) == pytest.approx([0.04, 0.002])
    assert holm_adjust([0.2]) == [0.2]
    assert holm_adjust([]) == []


def test_holm_adjust_is_capped_at_one_and_monotone_in_the_p_values():
    assert holm_adjust([0.6, 0.9]) == [1.0, 1.0]
    adjusted = holm_adjust([0.02, 0.011, 0.5, 0.012])
    order = np.argsort([0.02, 0.011, 0.5, 0.012])
    assert list(np.array(adjusted)[order]) == sorted(adjusted)
    assert adjusted == pytest.approx([0.044, 0.044, 0.5, 0.044])


def test_holm_alphas_are_alpha_over_the_members_left():
    assert holm_alphas(3, 0.06) == pytest.approx([0.02, 0.03, 0.06])
    assert holm_alphas(1, 0.05) == [0.05]


# --- options -------------------------------------------------------------------------------


def test_check_count_accepts_ints_from_the_minimum():
    assert check_count(1, "n_prompts") == 1
    assert check_count(np.int64(5), "n_prompts") == 5
    assert check_count(3, "batch_size", minimum=3) == 3


@pytest.mark.parametrize("value, minimum", [(0, 1), (-2, 1), (2, 3), (True, 1), (2.0, 1),
                                            ("4", 1), (None, 1)])
def test_check_count_refuses_anything_else_naming_the_option(value, minimum):
    with pytest.raises(MiAssertInputError) as err:
        check_count(value, "n_prompts", minimum=minimum)
    assert str(err.value) == f"n_prompts must be an int >= {minimum}; got {value!r}"


# --- bootstrap: the default seed, the p-value ---------------------------------------------


def test_the_default_bootstrap_seed_is_zero():
    x = np.random.default_rng(11).exponential(size=25)
    for default, seeded in [(bootstrap(Mean(x), threshold=0.5), bootstrap(Mean(x), threshold=0.5, seed=0)),
                            (bootstrap_mean(x, threshold=0.5), bootstrap_mean(x, threshold=0.5, seed=0))]:
        assert (default.low, default.high, default.bound, default.p_value) == (
            seeded.low, seeded.high, seeded.bound, seeded.p_value)
    other = bootstrap_mean(x, threshold=0.5, seed=1)
    assert (other.low, other.high) != (seeded.low, seeded.high)


def test_p_value_of_a_claim_without_threshold_or_variation():
    x = np.random.default_rng(2).normal(1.0, 0.5, 20)
    assert bootstrap_mean(x).p_value is None
    same, unit = np.full(12, 0.25), (0.0, 1.0)
    # a spread-free sample is bounded by the range: 0.25 alpha^(1/12) > 0.2 iff alpha > 0.8^12
    assert bootstrap_mean(same, threshold=0.2, value_range=unit).p_value == pytest.approx(
        0.8**12, rel=1e-4)
    assert bootstrap_mean(same, threshold=0.25, value_range=unit).p_value == 1.0
    assert bootstrap_mean(same, threshold=0.3, alternative="less", value_range=unit).p_value == (
        pytest.approx((0.7 / 0.75) ** 12, rel=1e-4))
    exact = Fixed(0.25)
    assert bootstrap(exact, threshold=0.2).p_value == 0.0
    assert bootstrap(exact, threshold=0.25).p_value == 1.0
    low, high = (bootstrap_mean(x, threshold=t).p_value for t in (0.8, 1.1))
    assert 0 < low < high <= 1


# --- statistics: defaults, names in messages, clusters, batches ---------------------------


def test_count_weighted_defaults_and_a_single_unit():
    stat = CountWeighted(lambda w: w[:, 0] / w.sum(1), 1)
    assert stat.name == "count-weighted statistic" and stat.unit == "prompts"
    assert stat.method == "BCa" and stat.batch is None and stat.n_units == 1
    assert stat.estimate() == 1.0
    with pytest.raises(MiAssertInputError, match="^no samples: need at least one unit$"):
        CountWeighted(lambda w: w.sum(1), 0)


def test_count_weighted_keeps_its_name_unit_method_and_clusters():
    x = np.arange(6.0)
    stat = CountWeighted(lambda w: (w @ x) / w.sum(1), 6, name="share", method="percentile",
                         units=["a", "a", "b", "c", "c", "d"], unit="features")
    assert (stat.name, stat.unit, stat.method) == ("share", "features", "percentile")
    assert stat.strata == (4,) and stat.n_units == 4 and stat.n_samples == 6
    with pytest.raises(MiAssertInputError, match="share: 2 unit ids for 6 samples"):
        CountWeighted(lambda w: w.sum(1), 6, name="share", units=["a", "b"])


def test_count_weighted_draws_its_resamples_in_batches_of_batch():
    x = np.random.default_rng(0).normal(size=20)
    rows_seen: list[int] = []

    def mean(w):
        rows_seen.append(w.shape[0])
        return (w @ x) / w.sum(1)

    batched = bootstrap(CountWeighted(mean, 20, batch=300), n_resamples=1000)
    # besides the estimate (1 row) and the jackknife (20): 1000 resamples as 300+300+300+100
    assert max(rows_seen) == 300 and rows_seen.count(300) == 3 and 100 in rows_seen
    plain = bootstrap(CountWeighted(lambda w: (w @ x) / w.sum(1), 20), n_resamples=1000)
    assert (batched.low, batched.high) == pytest.approx((plain.low, plain.high), abs=1e-12)


def test_fixed_defaults_and_its_name_in_errors():
    fixed = Fixed(0.25)
    assert fixed.n_units == 1 and fixed.unit == "exact value" and fixed.constant()
    res = bootstrap(fixed, threshold=0.2)
    assert (res.n, res.low, res.high, res.method) == (1, 0.25, 0.25, "exact")
    with pytest.raises(MiAssertInputError, match=r"^value: 1 of 1 values are NaN/inf"):
        Fixed(float("nan"))


def test_fixed_resamples_nothing_even_with_many_units():
    fixed = Fixed(0.4, n_units=50, unit="weight products")
    weights = np.ones((7, 50))
    assert fixed.weighted(weights).shape == (7,)
    assert fixed.of_unit_weights(weights).tolist() == [0.4] * 7
    assert bootstrap(fixed, threshold=0.3).method == "exact"


def test_auroc_counts_ties_as_half_a_win():
    auc = AUROC([1.0, 2.0, 3.0], [2.0, 2.0])  # wins: 0, 0.5+0.5, 1+1 of 6 pairs
    assert auc.estimate() == pytest.approx(3 / 6)
    assert AUROC([1.0, 1.0], [1.0, 1.0]).estimate() == 0.5
    assert AUROC([2.0, 3.0], [1.0, 2.0]).estimate() == pytest.approx(3.5 / 4)


def test_auroc_names_each_sample_in_its_errors():
    with pytest.raises(MiAssertInputError, match=r"^positive scores: 1 of 2 values"):
        AUROC([1.0, np.nan], [0.0, 1.0])
    with pytest.raises(MiAssertInputError, match=r"^negative scores: 1 of 2 values"):
        AUROC([1.0, 2.0], [np.nan, 1.0])
    with pytest.raises(MiAssertInputError, match=r"^positive scores: 1 unit ids for 2 samples"):
        AUROC([1.0, 2.0], [0.0, 1.0], positive_units=["a"])
    with pytest.raises(MiAssertInputError, match=r"^negative scores: 3 unit ids for 2 samples"):
        AUROC([1.0, 2.0], [0.0, 1.0], negative_units=["a", "b", "c"])


def test_auroc_merges_duplicated_units_in_each_sample():
    auc = AUROC(np.arange(10.0), np.arange(8.0) - 3, positive_units=[i // 2 for i in range(10)],
                negative_units=[0, 0, 0, 1, 2, 3, 4, 5])
    assert auc.strata == (5, 6) and auc.n_units == 11 and auc.n_samples == 18


# --- undefined claims ----------------------------------------------------------------------


def test_undefined_claim_carries_every_field_and_nan_numbers():
    ev = undefined_claim("share", "share of logit diff", "mean gap -0.2 <= 0", threshold=1,
                         alternative="less", alpha=0.01, n=12, unit="pairs",
                         settings={"ablation": "mean"}, model_info={"name": "m"},
                         details={"gap": -0.2})
    assert (ev.claim, ev.metric, ev.n, ev.unit, ev.alternative, ev.alpha) == (
        "share", "share of logit diff", 12, "pairs", "less", 0.01)
    assert ev.threshold == 1.0 and isinstance(ev.threshold, float)
    assert all(math.isnan(v) for v in (ev.estimate, ev.low, ev.high, ev.bound))
    assert not ev.passed and ev.reason == "undefined: mean gap -0.2 <= 0"
    assert dict(ev.settings) == {"ablation": "mean"} and dict(ev.model) == {"name": "m"}
    assert dict(ev.details) == {"gap": -0.2}
    assert ev.to_dict()["estimate"] is None  # NaN is stored as null


def test_undefined_claim_defaults():
    ev = undefined_claim("c", "m", "why", threshold=0.5)
    assert (ev.n, ev.unit, ev.alternative, ev.alpha) == (0, "prompts", "greater", 0.05)
    assert dict(ev.settings) == {} and dict(ev.model) == {} and dict(ev.details) == {}
    with pytest.raises(MiAssertInputError):
        undefined_claim("c", "m", "why", threshold=0.5, alpha=0.5)
    with pytest.raises(MiAssertInputError):
        undefined_claim("c", "m", "why", threshold=0.5, alternative="two-sided")


# --- Holm families -------------------------------------------------------------------------


def _spec(name: str, z: float, *, shift: float = 0.0, n: int = 60, **kw) -> ClaimSpec:
    """A claim "mean > 0" whose sample mean lies ``z`` standard errors above 0."""
    return ClaimSpec(name, f"{name} metric", {0: _normal_sample(z, n=n, shift=shift)},
                     threshold=0.0, **kw)


def test_holm_first_member_failing_at_its_level_stops_the_rest():
    # both pass at 0.05 alone and fail at 0.025; "a" (smaller p) is tested first, at 0.025
    a, b = _spec("a", 1.85), _spec("b", 1.78)
    assert a.evaluate(0.05).passed and b.evaluate(0.05).passed
    assert not a.evaluate(0.025).passed
    ev = holm_family([b, a], claim="each", alpha=0.05)
    by = {m.claim: m for m in ev.family}
    assert [m.claim for m in ev.family] == ["b", "a"]  # the caller's order
    assert by["a"].settings["holm_rank"] == 1 and by["b"].settings["holm_rank"] == 2
    assert by["a"].settings["holm_alpha"] == pytest.approx(0.025)
    assert by["b"].settings["holm_alpha"] == pytest.approx(0.05)
    assert not by["a"].passed and by["a"].reason == ""
    assert not by["b"].passed
    assert by["b"].reason == "not tested: Holm step-down stopped at 'a'"
    assert clears(by["b"].bound, by["b"].threshold, by["b"].alternative)  # own numbers clear
    assert not ev.passed and ev.deciding == "a" and ev.reason == ""
    assert ev.details["members_passed"] == "0 of 2"
    assert ev.composite == "Holm over 2 members" and ev.claim == "each"


def test_holm_every_member_passing_is_tested_at_its_rank():
    strong, weak, middle = _spec("strong", 6.0), _spec("weak", 2.6), _spec("middle", 4.0)
    ev = holm_family([weak, strong, middle], claim="each", alpha=0.06)
    by = {m.claim: m for m in ev.family}
    assert ev.passed and all(m.passed and m.reason == "" for m in ev.family)
    assert [by[c].settings["holm_rank"] for c in ("strong", "middle", "weak")] == [1, 2, 3]
    assert [by[c].alpha for c in ("strong", "middle", "weak")] == pytest.approx([0.02, 0.03, 0.06])
    assert by["middle"].bound == middle.evaluate(0.03).bound
    assert ev.details["members_passed"] == "3 of 3"


def test_holm_orders_members_of_equal_p_value_by_their_margin():
    # every resample clears 0 for both: the same (smallest) p-value; the larger margin first
    far, near = _spec("far", 12.0), _spec("near", 9.0)
    first = {s.claim: s.evaluate(0.05) for s in (far, near)}
    assert first["far"].details["p_value"] == first["near"].details["p_value"]
    for members in ([far, near], [near, far]):
        by = {m.claim: m for m in holm_family(members, claim="x").family}
        assert by["far"].settings["holm_rank"] == 1 and by["near"].settings["holm_rank"] == 2


def test_holm_with_one_member_is_that_claim_with_the_given_description():
    spec = _spec("only", 3.0)
    ev = holm_family([spec], claim="renamed", alpha=0.05, settings={"s": 1},
                     model_info={"name": "m"}, details={"d": 2}, figures={"f": {"kind": "x"}},
                     hint="look here")
    assert ev.claim == "renamed" and not ev.family
    assert ev.bound == spec.evaluate(0.05).bound
    assert ev.settings["s"] == 1 and dict(ev.model) == {"name": "m"} and ev.details["d"] == 2
    assert ev.figures["f"] == {"kind": "x"} and ev.hint == "look here"
    assert holm_family([spec], claim="r", alpha=0.01).alpha == 0.01
    assert holm_family([spec], claim="r").hint == ""


def test_holm_composite_keeps_the_callers_description():
    ev = holm_family([_spec("a", 5.0), _spec("b", 4.0)], claim="family", alpha=0.05,
                     settings={"k": "v"}, model_info={"name": "m"}, details={"d": 1},
                     figures={"f": {"kind": "x"}}, hint="the hint")
    assert ev.claim == "family" and ev.settings["k"] == "v" and ev.settings["alpha"] == 0.05
    assert dict(ev.model) == {"name": "m"} and ev.details["d"] == 1
    assert ev.figures["f"] == {"kind": "x"} and ev.hint == "the hint"
    assert ev.details["deciding_member"] == ev.deciding


def test_holm_family_refuses_no_members():
    with pytest.raises(MiAssertInputError, match="^a family needs at least one member claim$"):
        holm_family([], claim="x")
    with pytest.raises(MiAssertInputError, match="^a composite claim needs at least one member$"):
        all_of([], claim="x")


# --- composites: the deciding member and what the composite reports -------------------------


def test_standardised_margin_in_units_of_the_bounds_distance():
    assert standardised_margin(0.6, 0.8, 0.5, "greater") == pytest.approx(0.5)
    assert standardised_margin(0.45, 0.3, 0.5, "less") == pytest.approx(1 / 3)
    assert standardised_margin(0.4, 0.6, 0.5, "greater") == pytest.approx(-0.5)
    # a zero-width interval: the gap over a tiny scale, 1e-9 of max(|threshold|, 1)
    assert standardised_margin(0.5, 0.5, 0.4, "greater") == pytest.approx(0.1 / 1e-9)
    assert standardised_margin(7.0, 7.0, 5.0, "greater") == pytest.approx(2.0 / 5e-9)
    for bound, estimate in [(math.nan, 0.5), (0.5, math.nan), (math.inf, 0.5), (0.5, -math.inf)]:
        assert standardised_margin(bound, estimate, 0.4, "greater") == -math.inf


def test_all_of_reports_the_deciding_members_numbers_rows_and_envelope():
    x = _normal_sample(3.0, n=40)
    two_rows = ClaimSpec("two rows", "m1", {0: x, 1: x[::-1] + 0.01}, threshold=0.0, unit="pairs")
    weak = _spec("weak", 2.5, n=40)
    ev = all_of([two_rows, weak], claim="both", alpha=0.04, figures={"fig": {"kind": "x"}},
                settings={"k": 1})
    decider = next(m for m in ev.family if m.claim == ev.deciding)
    assert ev.passed and ev.deciding == ev.details["deciding_member"]
    assert ev.details["members_passed"] == "2 of 2"
    assert (ev.metric, ev.estimate, ev.low, ev.high, ev.bound, ev.n, ev.unit, ev.alpha) == (
        decider.metric, decider.estimate, decider.low, decider.high, decider.bound, decider.n,
        decider.unit, decider.alpha)
    assert ev.per_seed == decider.per_seed and ev.envelope == decider.envelope
    assert ev.settings["alpha"] == 0.04 and ev.settings["k"] == 1
    assert ev.settings["composite"] == "all members (intersection-union)"
    assert ev.figures["fig"] == {"kind": "x"}
    # the two-row member decides when it is the weaker one: its rows and envelope come along
    ev2 = all_of([two_rows, _spec("strong", 9.0, n=40)], claim="both")
    assert ev2.deciding == "two rows" and ev2.unit == "pairs"
    assert len(ev2.per_seed) == 2 and ev2.envelope == two_rows.evaluate().envelope
    assert ev2.envelope is not None and ev2.figures == {}


def test_the_failing_member_decides_and_the_composite_keeps_its_reason():
    bad = undefined_claim("undefined", "share", "no gap", threshold=0.5)
    ev = all_of([_spec("ok", 4.0), bad, _spec("fails", -1.0)], claim="all")
    assert not ev.passed and ev.deciding == "undefined" and ev.reason == "undefined: no gap"
    assert ev.details["members_passed"] == "1 of 3"
    ev = all_of([_spec("ok", 4.0), _spec("fails", -1.0), _spec("fails less", 1.0)], claim="all")
    assert ev.deciding == "fails" and ev.reason == ""


def test_all_of_refuses_what_is_not_a_claim_naming_its_type():
    with pytest.raises(MiAssertInputError) as err:
        all_of([_spec("ok", 3.0), object()], claim="x")
    assert str(err.value) == "a composite member must be a ClaimSpec or an Evidence; got object"


def test_all_of_has_no_hint_unless_given_or_a_member_has_one():
    a, b = _spec("a", 3.0), _spec("b", 4.0)
    assert all_of([a, b], claim="x").hint == "" and all_of([a], claim="x").hint == ""
    hinted = ClaimSpec("h", "m", {0: _normal_sample(-1.0)}, threshold=0.0, hint="see h")
    assert all_of([a, hinted], claim="x").hint == "see h"
    assert all_of([a, hinted], claim="x", hint="mine").hint == "mine"


# --- rows: names, order, seeds -------------------------------------------------------------


def test_rows_are_named_by_seed_model_seed_and_condition():
    x = _normal_sample(4.0, n=20)
    rows = {(3, 4, "len=8"): x + 0.3, (1, 2): x + 0.2, 0: x + 0.1}
    ev = ClaimSpec("c", "score", rows, threshold=0.0).evaluate()
    assert ev.figures["samples"]["labels"] == ["seed 0", "seed 1, model seed 2",
                                               "seed 3, model seed 4, len=8"]
    with pytest.raises(MiAssertInputError, match=r"row seed 5, model seed 6, short rests on 3 "):
        ClaimSpec("c", "s", {(5, 6, "short"): np.arange(3.0)}, threshold=0.0).evaluate()
    with pytest.raises(MiAssertInputError, match=r"row seed 7 rests on 3 "):
        ClaimSpec("c", "s", {7: np.arange(3.0)}, threshold=0.0).evaluate()


def test_mean_names_its_samples_in_errors():
    with pytest.raises(MiAssertInputError, match=r"^samples: 1 of 3 values are NaN/inf"):
        Mean([1.0, np.nan, 2.0])
    with pytest.raises(MiAssertInputError, match=r"^samples: 2 unit ids for 3 samples"):
        Mean([1.0, 2.0, 3.0], units=["a", "b"])


def test_holm_orders_by_p_value_even_against_the_margin():
    # "thin tail": a tight mean that drops by 100 in the ~2 % of resamples that draw unit 0
    # four times or more; its bound sits far above 0.1 below the estimate (a large margin)
    # but ~2 % of its resamples fall below the threshold (a larger p-value than "normal")
    x = 0.1 * _normal_sample(0.0, n=40)
    thin_tail = CountWeighted(lambda w: (w @ x) / w.sum(1) - 100.0 * (w[:, 0] >= 4), 40,
                              method="percentile")
    a = ClaimSpec("thin tail", "m", {0: thin_tail}, threshold=-0.1)
    b = _spec("normal", 4.0)
    first = {s.claim: s.evaluate(0.05) for s in (a, b)}
    assert first["thin tail"].details["p_value"] > first["normal"].details["p_value"]
    assert member_margin(first["thin tail"]) > member_margin(first["normal"])
    by = {m.claim: m for m in holm_family([a, b], claim="x").family}
    assert by["normal"].settings["holm_rank"] == 1 and by["thin tail"].settings["holm_rank"] == 2


# --- the BCa engine against scipy (the interval scipy's formulas give) -----------------------

#: scipy's BCa: the engine's ``interval="BCa"`` where that option exists (it was the only one)
BCA = {"interval": "BCa"} if "interval" in inspect.signature(bootstrap).parameters else {}


class MeanDifference(RowStatistic):
    """Two independently resampled samples: mean(a) - mean(b) (a two-stratum BCa statistic)."""

    name = "difference of means"

    def __init__(self, a: np.ndarray, b: np.ndarray) -> None:
        self.a, self.b = np.asarray(a, float), np.asarray(b, float)
        self._strata = (self.a.size, self.b.size)
        self._cluster_of = (None, None)

    def weighted(self, *weights):
        wa, wb = weights
        return (wa @ self.a) / wa.sum(1) - (wb @ self.b) / wb.sum(1)


def _scipy_bca(data, statistic, seed, level):
    res = sps.bootstrap(data, statistic, n_resamples=2000, confidence_level=level, method="BCa",
                        random_state=np.random.default_rng(seed), vectorized=True)
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def test_two_stratum_bca_sums_the_jackknife_of_each_stratum_like_scipy():
    rng = np.random.default_rng(5)
    a, b = rng.exponential(1.0, 25), -rng.exponential(0.5, 12)
    res = bootstrap(MeanDifference(a, b), threshold=0.0, seed=3, **BCA)
    low, high = _scipy_bca((a, b), lambda x, y, axis=-1: x.mean(axis) - y.mean(axis), 3, 0.95)
    assert res.method == "BCa"
    assert (res.low, res.high) == pytest.approx((low, high), abs=1e-12)


def test_bca_bias_correction_counts_ties_at_the_estimate_by_halves_like_scipy():
    x = np.tile([0.0, 1.0, 2.0, 3.0], 6)[:22]  # a discrete sample: many resamples equal the estimate
    res = bootstrap_mean(x, threshold=0.5, seed=4, **BCA)
    low, high = _scipy_bca((x,), np.mean, 4, 0.95)
    assert (res.low, res.high) == pytest.approx((low, high), abs=1e-12)


def test_bca_at_a_level_resolvable_by_the_resamples_like_scipy():
    # alpha/2 = 0.00075: BCa's corrected level stays inside [1/B, 1 - 1/B] with B = 2000
    x = np.random.default_rng(8).normal(size=40)
    res = bootstrap_mean(x, threshold=-1.0, alpha=0.0015, seed=1, **BCA)
    low, high = _scipy_bca((x,), np.mean, 1, 1 - 0.0015)
    assert res.method == "BCa" and (res.low, res.high) == pytest.approx((low, high), abs=1e-12)


def test_bca_past_the_resamples_falls_back_to_percentile():
    # alpha/2 = 0.0004 < 1/B: the BCa level cannot be read off 2000 resamples
    x = np.random.default_rng(8).normal(size=40)
    res = bootstrap_mean(x, threshold=-1.0, alpha=0.0008, seed=1, **BCA)
    assert res.method == "percentile"
    assert bootstrap(AUROC(x, x - 1), threshold=0.5, **BCA).method == "percentile"


def test_bca_whose_upper_level_passes_the_resamples_falls_back_to_percentile():
    # a strongly right-skewed sample: BCa moves the upper level past 1 - 1/B (the lower one
    # stays resolvable), so the percentile interval is used
    x = np.random.default_rng(0).exponential(size=20) ** 2
    assert bootstrap_mean(x, alpha=0.0012, seed=1, **BCA).method == "percentile"
    assert bootstrap_mean(x, alpha=0.0012, seed=1, alternative="less", **BCA).method == "percentile"


def test_bca_with_an_undefined_jackknife_falls_back_to_percentile():
    # deleting unit 0 leaves the statistic undefined (NaN): no acceleration, no BCa
    x = np.random.default_rng(3).normal(size=20)
    stat = CountWeighted(lambda w: np.where(w[:, 0] > 0, (w @ x) / w.sum(1), np.nan), 20)
    res = bootstrap(stat, threshold=-1.0, **BCA)
    assert res.method == "percentile" and res.low < res.estimate < res.high


# --- ratio of means ------------------------------------------------------------------------


def test_ratio_resamples_with_a_vanishing_denominator_are_clipped_not_infinite():
    stat = RatioOfMeans([1.0, -2.0, 0.0], [0.0, 0.0, 1.0])
    w = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 2.0]])
    assert stat.weighted(w).tolist() == [RATIO_CLIP, -RATIO_CLIP, -RATIO_CLIP, 0.0]
    zero = RatioOfMeans([0.0, 1.0], [0.0, 1.0]).weighted(np.array([[1.0, 0.0]]))
    assert zero.tolist() == [0.0]  # 0 / 0: nothing said about the ratio
    one_minus = RatioOfMeans([1.0, 0.0], [0.0, 1.0], one_minus=True)
    assert one_minus.weighted(np.array([[1.0, 0.0], [1.0, 1.0]])).tolist() == [1 - RATIO_CLIP, 0.0]


def test_ratio_with_a_zero_denominator_raises_no_numpy_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert math.isinf(RatioOfMeans([1.0, 2.0], [0.0, 0.0]).estimate())
        assert math.isnan(RatioOfMeans([0.0, 0.0], [0.0, 0.0]).estimate())
        stat = RatioOfMeans(np.r_[np.ones(9), 0.0], np.r_[np.zeros(9), 1.0])
        stat.weighted(np.array([[1.0] * 9 + [0.0], [0.0] * 10]))
        with pytest.raises(MiAssertInputError, match="undefined"):
            bootstrap(RatioOfMeans([1.0, 2.0], [0.0, 0.0]))


@pytest.mark.parametrize("num, den", [
    (np.ones(12), np.linspace(1.0, 2.0, 12)),  # constant numerator, varying denominator
    (np.linspace(0.0, 1.0, 12), np.ones(12)),  # range exactly 1 over a constant denominator
    (np.full(12, 2.0), np.linspace(1.0, 2.0, 12)),  # denominator range exactly 1
])
def test_ratio_varies_when_either_side_varies(num, den):
    stat = RatioOfMeans(num, den)
    assert not stat.constant()
    res = bootstrap(stat, threshold=0.0)
    assert res.low < res.high and res.method != "degenerate"
    assert RatioOfMeans(np.ones(12), np.full(12, 2.0)).constant()


def test_ratio_names_numerator_and_denominator_in_errors():
    with pytest.raises(MiAssertInputError, match=r"^numerator: 1 of 2 values are NaN/inf"):
        RatioOfMeans([1.0, np.nan], [1.0, 1.0])
    with pytest.raises(MiAssertInputError, match=r"^denominator: 1 of 2 values are NaN/inf"):
        RatioOfMeans([1.0, 1.0], [np.inf, 1.0])
    with pytest.raises(MiAssertInputError) as err:
        RatioOfMeans([1.0, 2.0, 3.0], [1.0, 1.0])
    assert str(err.value) == ("numerator has 3 values, denominator 2; a ratio of means pairs "
                              "them per unit")
    with pytest.raises(MiAssertInputError, match=r"^numerator: 2 unit ids for 3 samples"):
        RatioOfMeans([1.0, 2.0, 3.0], [1.0, 1.0, 1.0], units=["a", "b"])


# --- claims: row keys, row order, row seeds, samples -----------------------------------------


def test_row_keys_of_every_accepted_shape():
    x = _normal_sample(4.0, n=10)
    ev = ClaimSpec("c", "s", {(5,): x, (6, 2): x + 1, (7, None, "lbl"): x + 2,
                              np.int64(8): x + 3}, threshold=0.0).evaluate()
    assert [(r.seed, r.model_seed, r.label) for r in ev.per_seed] == [
        (5, None, ""), (6, 2, ""), (7, None, "lbl"), (8, None, "")]


@pytest.mark.parametrize("key", [(1, 2, "a", "extra"), (), ("a", 1), (1, "b"), (1.5,), True,
                                 "0"])
def test_row_keys_of_any_other_shape_are_refused(key):
    with pytest.raises(MiAssertInputError) as err:
        ClaimSpec("c", "s", {key: np.arange(10.0)}, threshold=0.0).evaluate()
    assert str(err.value) == (
        f"sample row key {key!r} not understood: use an int seed, (seed, model_seed), "
        "(seed, model_seed, label) or mi_assert.stats.claims.RowKey")


def test_rows_run_by_seed_then_model_seed_without_one_first_and_conditions_as_given():
    x = _normal_sample(4.0, n=10)
    rows = {(1, 0, "z"): x, (0, 3): x + 0.1, (1, 0, "a"): x + 0.2, (0, None): x + 0.3,
            (0, 0): x + 0.4, (1, 0, "m"): x + 0.5}
    ev = ClaimSpec("c", "s", rows, threshold=0.0).evaluate()
    assert [(r.seed, r.model_seed, r.label) for r in ev.per_seed] == [
        (0, None, ""), (0, 0, ""), (0, 3, ""), (1, 0, "z"), (1, 0, "a"), (1, 0, "m")]


def test_every_row_has_its_own_bootstrap_stream_which_bootstrap_seed_shifts():
    x = np.random.default_rng(0).exponential(size=30)
    rows = {(0, None, label): x for label in ("a", "b", "c", "d")}
    ev = ClaimSpec("c", "s", rows, threshold=0.0).evaluate()
    assert len({r.bound for r in ev.per_seed}) == 4  # same data, four resample streams
    again = ClaimSpec("c", "s", rows, threshold=0.0).evaluate()
    assert [r.bound for r in again.per_seed] == [r.bound for r in ev.per_seed]
    shifted = ClaimSpec("c", "s", rows, threshold=0.0, bootstrap_seed=12345).evaluate()
    assert [r.bound for r in shifted.per_seed] != [r.bound for r in ev.per_seed]


def test_samples_take_the_claims_unit_and_callables_get_int_seeds():
    seen = []

    def draw(seed):
        seen.append(type(seed))
        return np.random.default_rng(seed).normal(1.0, 0.2, 12)

    ev = ClaimSpec("c", "s", draw, threshold=0.0, seeds=[np.int64(1), 2], unit="pairs").evaluate()
    assert seen == [int, int] and ev.unit == "pairs"
    conditions = ClaimSpec("c", "s", lambda seed: {"a": draw(seed), "b": draw(seed + 10)},
                           threshold=0.0, seeds=[3], unit="features").evaluate()
    assert conditions.unit == "features" and [r.label for r in conditions.per_seed] == ["a", "b"]
    (stat,) = resolve_samples({0: np.arange(3.0)}).values()
    assert stat.unit == "prompts"


def test_samples_of_the_wrong_kind_are_refused_with_the_reason():
    with pytest.raises(MiAssertInputError) as err:
        resolve_samples([np.arange(10.0)])
    assert str(err.value) == ("samples must be a mapping {seed or (seed, model_seed[, label]): "
                              "data} or a callable seed -> data; got list")
    with pytest.raises(MiAssertInputError) as err:
        resolve_samples(lambda seed: np.arange(10.0))
    assert str(err.value) == "samples is a callable seed -> samples: pass seeds=[...] too"
    with pytest.raises(MiAssertInputError) as err:
        resolve_samples({})
    assert str(err.value) == "no sample rows: need at least one seed's samples"
    with pytest.raises(MiAssertInputError) as err:
        resolve_samples({0: np.arange(3.0), (0, None, ""): np.arange(3.0)})
    assert str(err.value) == "duplicate sample row RowKey(seed=0, model_seed=None, label='')"


# --- claims: the verdict's settings, rows and p-value -----------------------------------------


def test_a_claim_records_alpha_quorum_and_each_rows_threshold():
    rows = {s: _normal_sample(3.0 + s, n=20) for s in range(3)}
    ev = ClaimSpec("c", "s", rows, threshold=0.1, quorum=2).evaluate(0.04)
    assert ev.settings["alpha"] == 0.04 and ev.settings["quorum"] == "2 of 3 seeds"
    assert all(r.threshold == 0.1 and r.alternative == "greater" for r in ev.per_seed)
    assert all(r.method for r in ev.per_seed)
    assert "quorum" not in ClaimSpec("c", "s", rows, threshold=0.1).evaluate().settings
    given = ClaimSpec("c", "s", rows, threshold=0.1, settings={"alpha": "theirs"}).evaluate()
    assert given.settings["alpha"] == "theirs"


def test_evaluate_claim_defaults_to_alpha_005():
    from mi_assert.stats.claims import evaluate_claim

    spec = ClaimSpec("c", "s", {0: _normal_sample(3.0)}, threshold=0.0)
    assert evaluate_claim(spec).alpha == 0.05
    assert evaluate_claim(spec).bound == spec.evaluate(0.05).bound


def test_the_claims_p_value_is_the_deciding_seeds():
    rows = {0: _normal_sample(2.5, n=30), 1: _normal_sample(4.0, n=30, shift=0.01)}
    every = ClaimSpec("c", "s", rows, threshold=0.0).evaluate()
    p = sorted(r.p_value for r in every.per_seed)
    assert every.details["p_value"] == p[1]  # every seed must pass: the worst one
    one = ClaimSpec("c", "s", rows, threshold=0.0, quorum=1).evaluate()
    assert one.details["p_value"] == p[0]  # one seed suffices: the best one


def test_a_threshold_outside_the_range_names_the_metric():
    with pytest.raises(MiAssertInputError, match="outside the range of the induction score"):
        ClaimSpec("c", "induction score", {0: np.arange(10.0)}, threshold=2.0,
                  value_range=(0.0, 1.0)).evaluate()


@pytest.mark.parametrize("quorum, n, expected", [(None, 3, 3), (2, 3, 2), (1, 1, 1),
                                                 (0.5, 3, 2), (1.0, 4, 4), (0.2, 3, 1),
                                                 (0.34, 3, 2), (0.75, 4, 3)])
def test_quorum_counts(quorum, n, expected):
    assert quorum_count(quorum, n) == expected


@pytest.mark.parametrize("quorum, message", [
    (True, "quorum must be an int count or a fraction in (0, 1]"),
    (0, "quorum=0: must lie in 1..3 (the number of seeds)"),
    (4, "quorum=4: must lie in 1..3 (the number of seeds)"),
    (0.0, "quorum=0.0: use an int count (1..3) or a fraction in (0, 1]"),
    (1.5, "quorum=1.5: use an int count (1..3) or a fraction in (0, 1]"),
    ("2", "quorum='2': use an int count (1..3) or a fraction in (0, 1]"),
])
def test_quorums_that_mean_nothing_are_refused(quorum, message):
    with pytest.raises(MiAssertInputError) as err:
        quorum_count(quorum, 3)
    assert str(err.value) == message


# --- evidence: JSON of numpy values and other objects -----------------------------------------


class _Named:
    def __str__(self) -> str:
        return "named thing"


def test_evidence_json_turns_numpy_scalars_into_numbers_and_objects_into_text():
    ev = Evidence(claim="c", metric="m", estimate=0.5, low=0.4, high=0.6, bound=0.45, n=10,
                  threshold=0.4, alpha=0.05, alternative="greater", passed=True,
                  details={"f": np.float64(0.25), "i": np.int64(3), "nan": np.float64("nan"),
                           "obj": _Named(), "arr": np.arange(2)})
    d = ev.to_dict()["details"]
    assert d["f"] == 0.25 and isinstance(d["f"], float) and d["i"] == 3 and d["nan"] is None
    assert d["obj"] == "named thing" and d["arr"] == str(np.arange(2))
