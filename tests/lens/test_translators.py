"""TunedLens: identity start equals the logit lens, translator layout, model checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mi_assert.errors import MiAssertInputError
from mi_assert.lens.measure import measure_lens
from mi_assert.lens.readout import Readout
from mi_assert.lens.translators import LensConfig, TunedLens, lens_hooks


def test_untrained_lens_equals_logit_lens(kjv, prompts):
    identity = TunedLens.for_model(kjv)
    tuned = measure_lens(kjv, prompts, identity)
    logit = measure_lens(kjv, prompts, "logit")
    np.testing.assert_allclose(tuned.kl, logit.kl, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(tuned.top1, logit.top1)


def test_identity_lens_logits_match_readout(kjv, prompts):
    identity = TunedLens.for_model(kjv)
    readout = Readout(kjv)
    _, cache = kjv.run_with_cache(prompts[:2], ["blocks.1.hook_resid_post"])
    h = cache["blocks.1.hook_resid_post"]
    torch.testing.assert_close(identity.logits(h, 1, readout), readout(h, None), rtol=0, atol=1e-6)
    a, b = identity.affine(1)
    torch.testing.assert_close(a, torch.eye(kjv.d_model))
    assert float(b.abs().max()) == 0.0


def test_last_layer_is_exact_for_both_lenses(kjv, prompts, lens):
    for which in ("logit", lens):
        m = measure_lens(kjv, prompts, which, layers=[kjv.n_layers - 1])
        assert float(np.abs(m.kl).max()) < 1e-5
        assert float(m.top1.min()) == 1.0


def test_layout_matches_tuned_lens_package(kjv, lens):
    # tuned-lens: n_layers translators, entry i reads the input of block i; keys "{i}.weight"
    assert len(lens.layer_translators) == kjv.n_layers
    assert lens.config.hook_names == lens_hooks(kjv.n_layers)
    assert lens.config.hook_names[0] == "blocks.0.hook_resid_pre"
    keys = set(lens.layer_translators.state_dict())
    assert keys == {f"{i}.{p}" for i in range(kjv.n_layers) for p in ("weight", "bias")}
    package_fields = {"base_model_name_or_path", "d_model", "num_hidden_layers", "bias",
                      "base_model_revision", "unembed_hash", "lens_type"}
    assert package_fields <= set(lens.config.to_dict())
    assert lens.config.lens_type == "linear_tuned_lens"


def test_lens_of_another_shape_is_refused(kjv, prompts):
    other = TunedLens(LensConfig(base_model_name_or_path="x", d_model=128, num_hidden_layers=4))
    with pytest.raises(MiAssertInputError, match=r"d_model=128.*d_model=256"):
        measure_lens(kjv, prompts, other)


def test_lens_of_another_model_is_reported_not_refused(kjv, prompts, wrong_lens):
    m = measure_lens(kjv, prompts, wrong_lens, layers=[0])
    assert "another model" in m.settings["lens_warning"]


def test_forward_pass_readout_equals_module_readout(kjv, prompts, lens):
    """The fallback (a forward pass with the last resid_post replaced) decodes as the model's
    modules do, and gradients reach the translators through it."""
    modules = Readout(kjv)
    fallback = Readout(kjv)
    fallback._fn = None
    toks = prompts[:2]
    _, cache = kjv.run_with_cache(toks, ["blocks.1.hook_resid_post"])
    h = cache["blocks.1.hook_resid_post"]
    torch.testing.assert_close(lens.logits(h, 1, fallback, toks), lens.logits(h, 1, modules),
                               rtol=1e-4, atol=1e-4)
    w = lens.layer_translators[2].weight
    with torch.enable_grad():
        (g,) = torch.autograd.grad(lens.logits(h, 1, fallback, toks).logsumexp(-1).sum(), [w])
    assert float(g.abs().max()) > 0
