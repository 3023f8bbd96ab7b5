"""One options contract for every family."""

from __future__ import annotations

import pytest

from mi_assert.errors import MiAssertInputError
from mi_assert.stats.options import claim_options


def test_defaults_and_normalisation():
    opts = claim_options(seeds=3)
    assert opts.seeds == (3,) and opts.alpha == 0.05 and opts.quorum is None
    assert claim_options(seeds=[0, 1], model_seeds=[2]).model_seeds == (2,)


@pytest.mark.parametrize("kwargs, match", [
    ({"seeds": [0, 0]}, "seeds must be distinct"),
    ({"seeds": []}, "seeds must be an int or a non-empty sequence"),
    ({"seeds": ["a"]}, "seeds must be an int or a non-empty sequence"),
    ({"seeds": True}, "seeds must be an int or a non-empty sequence"),
    ({"model_seeds": [1, 1]}, "model_seeds must be distinct"),
    ({"alpha": 0.7}, "alpha must be a number in"),
    ({"quorum": 4, "seeds": [0, 1]}, "quorum=4"),
    ({"quorum": 1.5}, "quorum="),
    ({"n_resamples": 5}, "n_resamples must be an int >= 100"),
    ({"min_prompts": 1}, "min_prompts must be an int >= 2"),
])
def test_bad_options_raise_one_style_of_error(kwargs, match):
    with pytest.raises(MiAssertInputError, match=match):
        claim_options(**kwargs)
