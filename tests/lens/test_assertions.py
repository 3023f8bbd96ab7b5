"""Lens claims: pass on true claims, ClaimFailed on false ones, clear input errors."""

from __future__ import annotations

import pytest

from mi_assert.errors import MiAssertInputError
from mi_assert.lens.assertions import (
    assert_lens_agreement,
    assert_tuned_lens_beats_logit_lens,
    check_lens_agreement,
)
from mi_assert.verdict import ClaimFailed

FAST = {"n_resamples": 500}


def test_agreement_true_claim_passes(kjv, prompts, lens):
    ev = assert_lens_agreement(kjv, 2, prompts, lens, min_top1=0.6, max_kl=0.3, **FAST)
    assert ev.passed and ev.composite
    assert len(ev.family) == 2
    assert ev.details["deciding_member"] == ev.deciding
    assert ev.deciding in {m.claim for m in ev.family}
    assert {"lens_kl_tuned"} <= set(ev.figures)
    assert ev.n == prompts.shape[0] and ev.unit == "prompts"


def test_agreement_single_criterion_is_that_member(kjv, prompts, lens):
    ev = assert_lens_agreement(kjv, 2, prompts, lens, max_kl=0.3, **FAST)
    assert not ev.family and ev.metric.startswith("KL") and ev.alternative == "less"


def test_logit_lens_at_layer_0_does_not_agree(kjv, prompts):
    with pytest.raises(ClaimFailed) as info:
        assert_lens_agreement(kjv, 0, prompts, "logit", min_top1=0.95, max_kl=0.05, **FAST)
    ev = info.value.evidence
    assert not ev.passed and ev.settings["lens"] == "logit"
    assert "lens_kl_logit" in ev.figures


def test_lens_from_another_model_fails_agreement(kjv, prompts, lens, wrong_lens):
    assert check_lens_agreement(kjv, 2, prompts, lens, max_kl=0.3, **FAST).passed
    with pytest.raises(ClaimFailed) as info:
        assert_lens_agreement(kjv, 2, prompts, wrong_lens, max_kl=0.3, **FAST)
    assert "another model" in info.value.evidence.settings["lens_warning"]


def test_tuned_beats_logit_true_claim(kjv, prompts, lens):
    ev = assert_tuned_lens_beats_logit_lens(kjv, [0, 1, 2], prompts, lens, **FAST)
    assert ev.passed and len(ev.family) == 3
    assert ev.settings["composite"].startswith("Holm")
    assert {"lens_kl_logit", "lens_kl_tuned"} <= set(ev.figures)
    one = assert_tuned_lens_beats_logit_lens(kjv, 0, prompts, lens, min_gap=0.05, **FAST)
    assert not one.family and one.metric.startswith("KL_logit - KL_tuned")


def test_tuned_beats_logit_false_claims(kjv, prompts, lens, wrong_lens):
    with pytest.raises(ClaimFailed):
        assert_tuned_lens_beats_logit_lens(kjv, [1, 2], prompts, lens, min_gap=1.0, **FAST)
    with pytest.raises(ClaimFailed) as info:
        assert_tuned_lens_beats_logit_lens(kjv, [0, 1], prompts, wrong_lens, **FAST)
    assert "lens_warning" in info.value.evidence.settings


def test_duplicated_prompts_count_once(kjv, prompts, lens):
    copies = prompts[:4].repeat(6, 1)  # 24 rows, 4 distinct prompts
    with pytest.raises(MiAssertInputError, match="4 distinct prompts"):
        check_lens_agreement(kjv, 1, copies, lens, max_kl=0.3, **FAST)


@pytest.mark.parametrize("kwargs, match", [
    ({"layer": 4, "max_kl": 0.3}, r"layer 4 is out of range.*0\.\.3"),
    ({"layer": "1", "max_kl": 0.3}, "layer must be an int"),
    ({"layer": 1}, "at least one criterion"),
    ({"layer": 1, "min_top1": 1.5}, r"min_top1 must be a number in \(0, 1\)"),
    ({"layer": 1, "min_top1": 0.0}, r"min_top1 must be a number in \(0, 1\)"),
    ({"layer": 1, "max_kl": 0.0}, "max_kl must be a finite number > 0"),
    ({"layer": 1, "max_kl": -1.0}, "max_kl must be a finite number > 0"),
    ({"layer": 1, "max_kl": 0.3, "lens": "tunedd"}, r"unknown lens.*Allowed: 'logit'"),
    ({"layer": 1, "max_kl": 0.3, "alpha": 0.7}, "alpha"),
])
def test_agreement_bad_inputs(kjv, prompts, kwargs, match):
    kwargs = {"lens": "logit", **kwargs}
    with pytest.raises(MiAssertInputError, match=match):
        check_lens_agreement(kjv, prompts=prompts, **kwargs, **FAST)


@pytest.mark.parametrize("layers, kwargs, match", [
    ([3], {}, "last layer"),
    ([0, 5], {}, "out of range"),
    ([0], {"min_gap": float("nan")}, "min_gap must be a finite number"),
    ([0], {"tuned_lens": "logit"}, "tuned_lens must be a TunedLens"),
])
def test_beats_bad_inputs(kjv, prompts, lens, layers, kwargs, match):
    from mi_assert.lens.assertions import check_tuned_lens_beats_logit_lens

    kwargs = {"tuned_lens": lens, **kwargs}
    with pytest.raises(MiAssertInputError, match=match):
        check_tuned_lens_beats_logit_lens(kjv, layers, prompts, **kwargs, **FAST)
