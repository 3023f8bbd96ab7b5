"""EAP = an autograd reference; EAP = exact where the metric is linear in the patched input."""

from __future__ import annotations

import pytest
import torch

import mi_assert
from mi_assert.edges import edge_sweep
from tests.edges.reference import autograd_eap

#: fp32 (eps 1.2e-7, one ulp at |x| in [16, 32) is 1.9e-6): both sides sum ~pos x d_model
#: products in a different order (and the reference takes head outputs from TL's hook_result,
#: not z @ W_O), so allow 1e-5 absolute or 2e-6 of the largest score, about 20 ulps there
TOLERANCE, RELATIVE = 1e-5, 2e-6


def _max_err(ours, ref):
    err = float((ours - ref).abs().max())
    assert err <= max(TOLERANCE, RELATIVE * float(ref.abs().max())), err
    return err


@pytest.mark.parametrize("fixture", ["mlp_model", "attn_only_model"])
def test_equal_to_autograd_onrandom_models(request, fixture, random_pairs):
    model = request.getfixturevalue(fixture)
    clean, corrupted, metric = random_pairs
    scores = edge_sweep(model, clean, corrupted, metric, method="eap")
    ref = autograd_eap(model, clean, corrupted, metric, [e.name for e in scores.edges])
    assert scores.method == "eap" and scores.per_prompt.shape == ref.shape
    _max_err(scores.per_prompt, ref)
    assert float(ref.abs().max()) > 1e-2


def test_equal_to_autograd_on_the_planted_model(planted_edges):
    handle, _, ps = planted_edges
    metric = mi_assert.logit_diff(ps.correct, ps.wrong)
    scores = edge_sweep(handle, ps, metric=metric, method="eap")
    ref = autograd_eap(handle.model, ps.clean, ps.corrupted, metric, [e.name for e in scores.edges])
    _max_err(scores.per_prompt, ref)


def _linear_edges(scores):
    """Edges whose receiver input reaches a logit difference linearly in the planted model (no
    layer norm anywhere): the logits themselves, and the values of last-layer heads (a head's
    output is linear in its v input at a fixed pattern, and only the logits read it)."""
    return [i for i, e in enumerate(scores.edges)
            if e.receiver.kind == "logits" or (e.receiver.layer == 1 and e.input == "v")]


def test_eap_equals_exact_where_the_model_is_linear_in_the_input(planted_edges):
    handle, _, ps = planted_edges
    exact = edge_sweep(handle, ps, metric="logit_diff")
    eap = edge_sweep(handle, ps, metric="logit_diff", method="eap")
    linear = _linear_edges(exact)
    assert len(linear) == 9 + 4 * 5  # 9 edges into the logits, 5 into each L1 head's v
    # equal in real arithmetic; in fp32 a forward and a backward pass round differently
    _max_err(eap.per_prompt[linear], exact.per_prompt[linear])
    assert float(exact.per_prompt[linear].abs().max()) > 10  # L1H0 -> logits: the whole effect
    # and away from linearity EAP misses K-composition through saturated attention
    k_edge = exact.index("L0H0->L1H0.k")
    assert exact.values[k_edge] > 10 * eap.values[k_edge]


def test_eap_equals_exact_into_logits_of_an_unnormalisedrandom_model(random_pairs):
    from tests.edges.conftest import random_model

    model = random_model(attn_only=False, normalization=None)
    clean, corrupted, metric = random_pairs
    into_logits = [e for e in mi_assert.edges.EdgeGraph.from_handle(model).edges
                   if e.receiver.kind == "logits"]
    exact = edge_sweep(model, clean, corrupted, metric, edges=into_logits)
    eap = edge_sweep(model, clean, corrupted, metric, method="eap", edges=into_logits)
    assert torch.allclose(exact.per_prompt, eap.per_prompt, atol=1e-5)
