"""Tuned lens vs logit lens on ``kjv-gpt2-4l`` (Belrose et al. 2023), on held-out text.

The tuned lens (per-layer affine translators, ``mi_assert.lens``) was trained on training
chapters and saved beside the final checkpoint. Claims, on windows of held-out (confirm split)
text:

- the published finding, measured first here and then asserted: at the early layers the tuned
  lens is closer to the model's final distribution than the logit lens (paired per prompt);
- at a middle layer the tuned lens agrees with the output (top-1 agreement and KL bounds),
  while the logit lens at the same layer does not reach the same bars;
- false claims raise: the same lens on another model of the same shape (the step-2400
  checkpoint, before the induction heads formed), and an untrained (identity) tuned lens, which
  is the logit lens. (On the much earlier checkpoints every lens agrees: a shallow model's
  layers already predict what its output does.)
"""

from __future__ import annotations

import pytest

import mi_assert
from mi_assert.verdict import ClaimFailed
from mi_assert.zoo.natural.prompts import CONFIRM, text_windows

#: bars set from the measured profile (48 confirm windows of 63 tokens): at layer 1 the tuned
#: lens has KL 0.30 and top-1 agreement 0.68, the logit lens 0.68 and 0.52, and the same tuned
#: lens on the step-2400 checkpoint 0.41 and 0.59. (KL per layer 0 / 1 / 2, logit lens:
#: 1.00 / 0.68 / 0.39, tuned lens: 0.50 / 0.30 / 0.15 nats.)
AGREEMENT_LAYER = 1
MIN_TOP1 = 0.62
MAX_KL = 0.36
EARLY_LAYERS = [0, 1]


@pytest.fixture(scope="module")
def heldout_windows():
    return text_windows(48, 63, CONFIRM, seed=4)


@pytest.fixture(scope="module")
def tuned(kjv):
    try:
        return mi_assert.load_lens(kjv, "tuned")
    except mi_assert.MiAssertInputError as exc:
        pytest.skip(f"no tuned lens beside the checkpoint: {exc}")


def test_tuned_lens_beats_logit_lens_at_early_layers(kjv, tuned, heldout_windows):
    mi_assert.assert_tuned_lens_beats_logit_lens(kjv, EARLY_LAYERS, heldout_windows, tuned)


def test_tuned_lens_agrees_with_output_at_middle_layer(kjv, tuned, heldout_windows):
    mi_assert.assert_lens_agreement(kjv, AGREEMENT_LAYER, heldout_windows, tuned,
                                    min_top1=MIN_TOP1, max_kl=MAX_KL)


def test_logit_lens_does_not_agree_at_middle_layer(kjv, heldout_windows):
    with pytest.raises(ClaimFailed):
        mi_assert.assert_lens_agreement(kjv, AGREEMENT_LAYER, heldout_windows, "logit",
                                        min_top1=MIN_TOP1, max_kl=MAX_KL)


def test_lens_of_another_model_does_not_agree(tuned, heldout_windows):
    early = mi_assert.load_model("kjv-gpt2-4l:step2400", backend="transformer_lens", device="cpu")
    with pytest.raises(ClaimFailed):
        mi_assert.assert_lens_agreement(early, AGREEMENT_LAYER, heldout_windows, tuned,
                                        min_top1=MIN_TOP1, max_kl=MAX_KL)


def test_untrained_tuned_lens_does_not_beat_logit_lens(kjv, tuned, heldout_windows):
    from mi_assert.lens.translators import TunedLens

    identity = TunedLens.for_model(kjv)  # translators at the identity: the logit lens
    with pytest.raises(ClaimFailed):
        mi_assert.assert_tuned_lens_beats_logit_lens(kjv, EARLY_LAYERS, heldout_windows, identity)
