"""Metrics: values, shapes, and the errors for bad metrics and zero gaps."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import mi_assert
from mi_assert.causal.metrics import evaluate_metric
from mi_assert.causal.recovery import check_gap, ratio_claim
from mi_assert.errors import MiAssertInputError
from mi_assert.stats import RowKey
from mi_assert.stats.options import claim_options


def _logits() -> torch.Tensor:
    torch.manual_seed(0)
    return torch.randn(3, 5, 7)


def test_logit_diff_logprob_prob_kl_values():
    logits = _logits()
    correct, wrong = torch.tensor([1, 2, 3]), torch.tensor([0, 0, 6])
    ld = mi_assert.logit_diff(correct, wrong)(logits)
    expected = logits[torch.arange(3), -1, correct] - logits[torch.arange(3), -1, wrong]
    assert torch.allclose(ld, expected)
    lp = mi_assert.logprob(correct, position=2)(logits)
    assert torch.allclose(lp, torch.log_softmax(logits[:, 2], -1)[torch.arange(3), correct])
    assert torch.allclose(mi_assert.prob(correct, position=2)(logits), lp.exp())
    kl = mi_assert.kl_to_clean(logits)
    assert torch.allclose(kl(logits), torch.zeros(3), atol=1e-6)
    assert bool((kl(torch.randn(3, 5, 7)) > 0).all())


def test_metric_protocol_attributes():
    m = mi_assert.logit_diff(torch.tensor([1, 2, 3]), torch.tensor([0, 0, 6]), position=-2)
    logits = _logits()
    assert m.position == -2
    assert torch.allclose(m.at_position(logits[:, -2]), m(logits))


def test_per_prompt_positions():
    logits = _logits()
    m = mi_assert.logprob(torch.tensor([1, 1, 1]), position=torch.tensor([0, 4, 2]))
    assert m.position is None
    assert torch.allclose(m(logits), torch.log_softmax(logits, -1)[torch.arange(3), torch.tensor([0, 4, 2]), 1])


def test_metric_wrong_shape_is_a_clear_error():
    logits = _logits()
    with pytest.raises(MiAssertInputError, match="one value per prompt"):
        evaluate_metric(lambda lg: lg[:, -1, 0].mean(), logits)
    with pytest.raises(MiAssertInputError, match=r"expected \(3,\)"):
        evaluate_metric(lambda lg: lg[:, -1, :2], logits)
    with pytest.raises(MiAssertInputError, match="Tensor"):
        evaluate_metric(lambda lg: 1.0, logits)


def test_bad_answer_ids_and_positions():
    logits = _logits()
    with pytest.raises(MiAssertInputError, match="2 ids but the batch has 3"):
        mi_assert.logit_diff(torch.tensor([1, 2]), torch.tensor([0, 0]))(logits)
    with pytest.raises(MiAssertInputError, match="out of range"):
        mi_assert.logprob(1, position=9)(logits)
    with pytest.raises(MiAssertInputError, match="0..6"):
        mi_assert.logprob(torch.tensor([1, 2, 99]))(logits)


def test_zero_gap_is_a_clear_error():
    with pytest.raises(MiAssertInputError, match="undefined"):
        check_gap(np.array([1.0, 1.0]), np.array([1.0, 1.0]))
    with pytest.raises(MiAssertInputError, match="undefined"):  # tiny relative to the scale
        check_gap(np.array([1000.0, 1000.0]), np.array([1000.0001, 999.9999]))
    assert check_gap(np.array([2.0, 2.0]), np.array([0.0, 1.0])) == pytest.approx(1.5)


def test_ratio_claim_is_the_ratio_of_means_and_deterministic(evidence_ok):
    rng = np.random.default_rng(0)
    num, den = rng.normal(1, 0.3, 40), rng.normal(2, 0.3, 40)
    opts = claim_options(seeds=[1])

    def spec():
        return ratio_claim("ratio > 0.3", "ratio", {RowKey(1): (num, den, None)}, threshold=0.3,
                           alternative="greater", options=opts)

    a, b = spec().evaluate(), spec().evaluate()
    assert a.estimate == pytest.approx(num.mean() / den.mean())
    assert (a.estimate, a.low, a.high, a.bound) == (b.estimate, b.low, b.high, b.bound)
    assert a.low < a.estimate < a.high and a.bound > 0.3 and a.passed and a.n == 40
    evidence_ok(a)
    # unit ids merge copies: 40 samples of 10 prompts are 10 units
    units = [i % 10 for i in range(40)]
    merged = ratio_claim("ratio > 0.3", "ratio", {RowKey(1): (num, den, units)}, threshold=0.3,
                         alternative="greater", options=opts).evaluate()
    assert merged.n == 10 and merged.estimate == pytest.approx(a.estimate)
    with pytest.raises(MiAssertInputError, match="rests on 4 distinct prompts"):
        ratio_claim("ratio > 0.3", "ratio", {RowKey(1): (num, den, [i % 4 for i in range(40)])},
                    threshold=0.3, alternative="greater", options=opts).evaluate()
