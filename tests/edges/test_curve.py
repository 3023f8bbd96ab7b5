"""Faithfulness curves and the AUC claim on planted-induction@s0.

Planted truth (tests/edges/test_planted_ground_truth.py): the three circuit edges
embed -> L0H0.v, L0H0 -> L1H0.k, L1H0 -> logits are the top three exact scores, and together
they restore the whole clean-corrupted gap. The exact ranking's curve is then 0 for k < 3 and
~1 from k = 3 on; a reversed ranking keeps one of them out until the last edge.
"""

from __future__ import annotations

import numpy as np
import pytest

import mi_assert
from mi_assert.edges import (
    FaithfulnessCurve,
    assert_faithfulness_auc,
    check_faithfulness_auc,
    edge_sweep,
    faithfulness_curve,
)
from mi_assert.edges.curve import default_ks, random_orderings, trapezoid_weights
from mi_assert.errors import MiAssertInputError
from mi_assert.report.figures import figures_to_plain
from mi_assert.verdict import ClaimFailed


@pytest.fixture(scope="module")
def planted_scores(planted_edges, one_torch_thread):
    handle, _, ps = planted_edges
    return handle, ps, edge_sweep(handle, ps)


@pytest.fixture(scope="module")
def exact_curve(planted_scores) -> FaithfulnessCurve:
    handle, ps, scores = planted_scores
    return faithfulness_curve(handle, scores, ps, n_random_orderings=20, seed=0)


def reversed_ranking(scores):
    return [edge for edge, _ in scores.top(len(scores))][::-1]


# ----- the grid and the area --------------------------------------------------------------
@pytest.mark.parametrize("n_edges", [1, 2, 10, 81, 5000])
def test_default_grid_runs_from_zero_to_every_edge(n_edges):
    ks = default_ks(n_edges)
    assert ks[0] == 0 and ks[-1] == n_edges
    assert list(ks) == sorted(set(ks)) and len(ks) <= 24


def test_trapezoid_weights_integrate_lines_exactly():
    ks = [0, 1, 3, 7, 10]
    w = trapezoid_weights(ks, 10)
    x = np.asarray(ks) / 10
    assert w.sum() == pytest.approx(1.0)  # a flat curve at 1 has area 1
    assert w @ x == pytest.approx(0.5)  # the diagonal has area 1/2


# ----- planted truth ----------------------------------------------------------------------
def test_exact_ranking_reaches_full_faithfulness_at_three_edges(exact_curve):
    curve = exact_curve
    by_k = dict(zip(curve.ks, curve.faithfulness, strict=True))
    assert {e.name for e in curve.edges[:3]} == {"embed->L0H0.v", "L0H0->L1H0.k", "L1H0->logits"}
    for k in (0, 1, 2):  # no circuit path to the logits yet
        assert abs(by_k[k]) < 1e-3
    for k in curve.ks[curve.ks.index(3):]:
        assert by_k[k] == pytest.approx(1.0, abs=0.02)


def test_exact_ranking_auc_is_near_one_and_far_above_random(exact_curve):
    curve = exact_curve
    # a curve that is 0 up to k = 2 and 1 from k = 3 on: area 1 - 2.5 / 81
    assert curve.auc == pytest.approx(1 - 2.5 / curve.n_edges, abs=0.01)
    assert curve.random_auc_mean < 0.5
    assert curve.auc > curve.random_auc.max()
    assert curve.auc_percentile == 1.0


def test_the_prompt_statistic_is_the_curve_auc(exact_curve):
    assert exact_curve.auc_statistic().estimate() == pytest.approx(exact_curve.auc, abs=1e-9)


def test_random_orderings_are_seeded(planted_scores, exact_curve):
    handle, ps, scores = planted_scores
    again = faithfulness_curve(handle, scores, ps, ks=[0, 3, 81], n_random_orderings=3, seed=0)
    first_three = exact_curve.random_faithfulness[:3][:, [0, exact_curve.ks.index(3), -1]]
    np.testing.assert_allclose(again.random_faithfulness, first_three, atol=1e-6)
    edges = exact_curve.edges
    assert random_orderings(edges, 3, seed=0) == random_orderings(edges, 3, seed=0)
    assert random_orderings(edges, 3, seed=0) != random_orderings(edges, 3, seed=1)
    assert all(sorted(map(str, o)) == sorted(map(str, edges)) for o in random_orderings(edges, 3, 0))


def test_dict_and_line_figure(exact_curve):
    data = exact_curve.to_dict()
    assert data["ks"] == list(exact_curve.ks) and data["auc"] == exact_curve.auc
    assert set(data["random_auc_quantiles"]) == {"q05", "q50", "q95"}
    spec = figures_to_plain({"curve": exact_curve.figure()})["curve"]
    assert spec["kind"] == "line" and "error" not in spec
    assert len(spec["data"]["x"]) == len(spec["data"]["low"]) == len(exact_curve.ks)


# ----- the claim, both ways ---------------------------------------------------------------
def test_exact_ranking_passes_the_auc_claim(planted_scores):
    handle, ps, scores = planted_scores
    ev = assert_faithfulness_auc(handle, scores, ps, min_auc=0.8, n_random_orderings=5)
    assert ev.passed
    assert ev.details["auc"] == pytest.approx(1 - 2.5 / 81, abs=0.01)
    assert ev.details["auc_percentile_among_random"] == 1.0
    assert ev.figures["faithfulness_curve"]["kind"] == "line"


def test_reversed_ranking_fails_the_auc_claim(planted_scores):
    handle, ps, scores = planted_scores
    with pytest.raises(ClaimFailed):
        assert_faithfulness_auc(handle, reversed_ranking(scores), ps, min_auc=0.8,
                                n_random_orderings=1)


def test_lazy_exports():
    assert mi_assert.check_faithfulness_auc is check_faithfulness_auc
    assert mi_assert.faithfulness_curve is faithfulness_curve


# ----- refused inputs ---------------------------------------------------------------------
@pytest.mark.parametrize("min_auc", [0, 1, -0.1, 1.5, True, "0.8"])
def test_min_auc_outside_the_open_unit_interval_is_refused(planted_scores, min_auc):
    handle, ps, scores = planted_scores
    with pytest.raises(MiAssertInputError, match="min_auc"):
        check_faithfulness_auc(handle, scores, ps, min_auc=min_auc)


@pytest.mark.parametrize("ks", [[0, 82], [-1, 3], [3, 0], [0, 3, 3], [5], [0, 2.5]])
def test_bad_ks_are_refused(planted_scores, ks):
    handle, ps, scores = planted_scores
    with pytest.raises(MiAssertInputError, match="ks"):
        faithfulness_curve(handle, scores, ps, ks=ks)


@pytest.mark.parametrize("n", [0, -3, 2.0, True])
def test_bad_n_random_orderings_is_refused(planted_scores, n):
    handle, ps, scores = planted_scores
    with pytest.raises(MiAssertInputError, match="n_random_orderings"):
        faithfulness_curve(handle, scores, ps, n_random_orderings=n)


def test_a_ranking_with_a_repeated_edge_is_refused(planted_scores):
    handle, ps, _ = planted_scores
    with pytest.raises(MiAssertInputError, match="more than once"):
        faithfulness_curve(handle, ["L1H0->logits", "L1H0->logits"], ps)
