"""Composition scores: equal to TransformerLens's, and the planted K-composition is found."""

from __future__ import annotations

import numpy as np
import pytest

import mi_assert
from mi_assert.causal.composition import (
    baseline_scores,
    check_composition,
    composition_score,
    composition_scores,
)
from mi_assert.errors import MiAssertInputError
from mi_assert.verdict import ClaimFailed
from tests.evidence_contract import check_evidence as check_invariants


@pytest.mark.parametrize("kind", ["q", "k", "v"])
def test_scores_equal_transformer_lens(ln_model, kind):
    ours = composition_scores(ln_model, kind)
    tl = ln_model.all_composition_scores(kind.upper()).detach().double()
    assert (ours - tl).abs().max() <= 1e-5
    assert tl.abs().max() > 0.01


def test_planted_pair_equals_transformer_lens(planted):
    """The planted pair through TL's FactoredMatrix route (all pairs would take TL ~10 s)."""
    from transformer_lens.utils import composition_scores as tl_composition_scores

    handle, circuit = planted
    model = handle.model
    (prev,) = circuit.heads("previous_token")
    (ind,) = circuit.heads("induction")
    right = {"q": model.QK[ind], "k": model.QK[ind].T, "v": model.OV[ind]}
    for kind, matrix in right.items():
        tl = float(tl_composition_scores(model.OV[prev], matrix, broadcast_dims=False).detach())
        assert composition_score(handle, prev, ind, kind) == pytest.approx(tl, abs=1e-5)


def test_prev_token_head_k_composes_with_induction_head(planted):
    handle, circuit = planted
    (prev,) = circuit.heads("previous_token")
    (ind,) = circuit.heads("induction")
    ev = mi_assert.assert_composition(handle, prev, ind, kind="k")
    check_invariants(ev)
    assert ev.passed
    score = composition_score(handle, prev, ind, "k")
    # a deterministic score: zero-width interval, bound = score; n counts the baseline draws
    assert ev.estimate == ev.low == ev.high == ev.bound == pytest.approx(score)
    assert (ev.n, ev.unit) == (200, "random-baseline draws")
    assert "n=200 random-baseline draws" in ev.summary_line()
    # threshold = max(baseline 95% quantile, 1.5 x baseline mean), recomputed here
    w = handle.weights()
    shapes = (w.W_V[0, 0].shape, w.W_O[0, 0].shape, w.W_K[0, 0].shape, w.W_Q[0, 0].T.shape)
    base = baseline_scores(shapes, 200, 0)
    expected = max(float(np.quantile(base, 0.95, method="higher")), 1.5 * float(base.mean()))
    assert ev.threshold == pytest.approx(expected)
    assert ev.details["ratio (score / baseline mean)"] == pytest.approx(score / base.mean())
    assert ev.details["ratio (score / baseline mean)"] > 1.5
    heat = ev.figures["composition_scores"]["data"]
    assert heat.shape == (4, 4) and heat[prev[1], ind[1]] == pytest.approx(score)
    for kind in ("q", "v"):
        with pytest.raises(ClaimFailed, match=f"{kind.upper()}-composition") as info:
            mi_assert.assert_composition(handle, prev, ind, kind=kind)
        check_invariants(info.value.evidence)
        assert info.value.evidence.bound < info.value.evidence.threshold


def test_check_does_not_raise_and_every_baseline_seed_must_be_beaten(planted):
    handle, circuit = planted
    (prev,) = circuit.heads("previous_token")
    (ind,) = circuit.heads("induction")
    false = check_composition(handle, prev, ind, kind="q")
    check_invariants(false)
    assert not false.passed
    ev = check_composition(handle, prev, ind, kind="k", seeds=[0, 1])
    check_invariants(ev)
    assert ev.passed and len(ev.family) == 2
    assert [m.claim for m in ev.family] == [
        f"L{prev[0]}H{prev[1]} -> L{ind[0]}H{ind[1]} K-composition (baseline seed {s})"
        for s in (0, 1)]
    assert ev.family[0].threshold != ev.family[1].threshold  # two baselines
    alias = check_composition(handle, prev, ind, kind="k", seed=1)
    assert alias.to_dict() == check_composition(handle, prev, ind, kind="k", seeds=[1]).to_dict()
    with pytest.raises(MiAssertInputError, match="distinct"):
        check_composition(handle, prev, ind, kind="k", seeds=[1, 1])


def test_distractor_pairs_do_not_compose(planted):
    handle, circuit = planted
    (ind,) = circuit.heads("induction")
    (positional,) = circuit.heads("positional")
    (prev,) = circuit.heads("previous_token")
    (self_head,) = circuit.heads("self")
    for source, target in ((positional, ind), (prev, self_head)):
        with pytest.raises(ClaimFailed) as info:
            mi_assert.assert_composition(handle, source, target, kind="k")
        ev = info.value.evidence
        check_invariants(ev)
        assert ev.details["ratio (score / baseline mean)"] < 1.0


def test_deterministic_for_a_seed(planted):
    handle, circuit = planted
    (prev,) = circuit.heads("previous_token")
    (ind,) = circuit.heads("induction")
    runs = [mi_assert.assert_composition(handle, prev, ind, "k", seed=4).to_dict()
            for _ in range(2)]
    assert runs[0] == runs[1]


@pytest.mark.parametrize("kwargs, match", [
    ({"kind": "x"}, "kind 'x'"),
    ({"source": (1, 0), "target": (1, 1)}, "earlier layer"),
    ({"source": (1, 0), "target": (0, 1)}, "earlier layer"),
    ({"source": (0, 7)}, "head 7 is out of range"),
    ({"target": "L3H0"}, "layer 3 is out of range"),
    ({"source": "attn0"}, "not an attention head"),
    ({"n_baseline": 5}, "n_baseline"),
    ({"min_ratio": -1}, "min_ratio"),
    ({"min_ratio": 100}, "outside the range of the K-composition score"),
    ({"alpha": 0}, "alpha"),
    ({"seed": 0, "seeds": [0]}, "not both"),
])
def test_bad_input(planted, kwargs, match):
    handle, _ = planted
    args = {"source": (0, 0), "target": (1, 0), "kind": "k", **kwargs}
    with pytest.raises(MiAssertInputError, match=match):
        mi_assert.assert_composition(handle, args.pop("source"), args.pop("target"), **args)


def test_baseline_depends_only_on_shapes_and_seed():
    from mi_assert.causal.composition import baseline_scores

    shapes = ((16, 4), (4, 16), (16, 4), (4, 16))
    a, b = baseline_scores(shapes, 50, 0), baseline_scores(shapes, 50, 0)
    assert (a == b).all() and not (a == baseline_scores(shapes, 50, 1)).all()
    assert abs(a.mean() - 16 ** -0.5) < 0.1  # about 1/sqrt(d_model)
