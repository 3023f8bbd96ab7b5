"""Logit-lens and tuned-lens claims (Belrose et al. 2023): train, save, measure, assert."""

from mi_assert.lens.assertions import (
    assert_lens_agreement,
    assert_tuned_lens_beats_logit_lens,
    check_lens_agreement,
    check_tuned_lens_beats_logit_lens,
)
from mi_assert.lens.data import text_windows
from mi_assert.lens.measure import LensMeasurement, LensProfile, lens_profile, measure_lens
from mi_assert.lens.store import available_lenses, load_lens, save_lens
from mi_assert.lens.train import train_tuned_lens
from mi_assert.lens.translators import LensConfig, TunedLens

__all__ = [
    "LensConfig", "LensMeasurement", "LensProfile", "TunedLens", "assert_lens_agreement",
    "assert_tuned_lens_beats_logit_lens", "available_lenses", "check_lens_agreement",
    "check_tuned_lens_beats_logit_lens", "lens_profile", "load_lens", "measure_lens",
    "save_lens", "text_windows", "train_tuned_lens",
]
