"""measure_lens and lens_profile: shapes, units, figures, input errors."""

from __future__ import annotations

import numpy as np
import pytest

from mi_assert.errors import MiAssertInputError
from mi_assert.lens.measure import lens_profile, measure_lens
from mi_assert.report.figure_data import browser_figure


def test_shapes_and_ranges(kjv, prompts):
    m = measure_lens(kjv, prompts, "logit", layers=[0, 2])
    assert m.kl.shape == m.top1.shape == (prompts.shape[0], 2)
    assert m.layers == (0, 2) and len(set(m.units)) == prompts.shape[0]
    assert (m.kl >= 0).all() and ((0 <= m.top1) & (m.top1 <= 1)).all()
    assert (m.n_positions == prompts.shape[1] - 1).all()  # BOS left out


def test_profile_figures_are_drawable_lines(kjv, prompts, lens):
    prof = lens_profile(kjv, prompts, lens, n_resamples=200)
    assert prof.layers == tuple(range(kjv.n_layers))
    figs = prof.figures()
    assert set(figs) == {"lens_kl_logit", "lens_kl_tuned"}
    for spec in figs.values():
        assert spec["kind"] == "line"
        d = spec["data"]
        assert len(d["y"]) == len(d["low"]) == len(d["high"]) == kjv.n_layers
        assert all(lo <= y <= hi for lo, y, hi in zip(d["low"], d["y"], d["high"], strict=True))
        assert browser_figure(spec)["kind"] == "line"
    logit, tuned = prof.kl["logit"]["estimate"], prof.kl["tuned"]["estimate"]
    assert tuned[0] < logit[0]
    assert "logit: L0" in prof.summary()


def test_unknown_lens_name_lists_allowed(kjv, prompts):
    with pytest.raises(MiAssertInputError, match=r"unknown lens 'tunned'.*Allowed: 'logit'.*'tuned'"):
        measure_lens(kjv, prompts, "tunned")
    with pytest.raises(MiAssertInputError, match="unknown lens"):
        measure_lens(kjv, prompts, 3)


@pytest.mark.parametrize("layers", [4, -1, [0, 0], [], "1"])
def test_bad_layers(kjv, prompts, layers):
    with pytest.raises(MiAssertInputError, match="layer"):
        measure_lens(kjv, prompts, "logit", layers=layers)


def test_tuned_name_without_checkpoint_lens(kjv, prompts):
    # the checkpoint folder has no lenses/tuned (tests never write there) or has one; either way
    # an unknown saved name must list what exists
    from mi_assert.lens.store import load_lens

    with pytest.raises(MiAssertInputError, match="saved lenses:"):
        load_lens(kjv, "no-such-lens")


def test_bos_only_prompt_refused(kjv):
    bos = kjv.bos_token_id
    with pytest.raises(MiAssertInputError, match="no position besides BOS"):
        measure_lens(kjv, np.full((2, 1), bos).tolist(), "logit")
