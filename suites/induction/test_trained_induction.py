"""The zoo's trained 2-layer attention-only models form a previous-token and an induction head.

Heads are discovered with ``find_heads`` on fit prompts (seed 0) and asserted on held-out
prompts and vocabularies (``seed + HELDOUT_OFFSET``) over sampling seeds 0, 1, 2 and repeat
lengths 8, 16, 24, 32 (the model was trained on lengths 8..32, so no fixed offset solves it).
Each training seed is its own model; head indices differ between seeds, so each is discovered
separately. Skips with the reason when a checkpoint has not been trained yet.
"""

from __future__ import annotations

import pytest

import mi_assert
from mi_assert.verdict import ClaimFailed

SPECS = [f"attn-only-2l-induction@s{seed}" for seed in range(3)]
#: Measured (checkpoints of 2026-11-22; the numbers in the reasons, held-out estimates and bounds of
#: the heads found on fit prompts, re-measured 2026-12-01): in seeds 1 and 2 every layer-1 head's
#: induction score decays with the repeat
#: length (about 0.9 at 8, 0.36 / 0.27 at 32: roughly 7 / L, i.e. only the first few positions of
#: the second repeat attend to the induction target), and the best layer-0 previous-token head
#: decays the same way (0.85 -> 0.21, 0.60 -> 0.15), although the models still predict the
#: second repeat (accuracy 0.87 at L=32): the behaviour is spread over all four layer-1 heads,
#: none of which is an induction head by the 0.4 criterion at every length. strict=True and
#: raises=ClaimFailed: if a retrained checkpoint makes the claim hold, the XPASS fails the run so
#: this marker gets removed, and any other error (a structural assert, e.g. the best head is not
#: in the expected layer) fails loudly instead of counting as the expected failure.
KNOWN_WEAK = {
    "attn-only-2l-induction@s1": "seed 1: scores decay with repeat length (induction L1H1 0.404, "
                                 "bound 0.390; previous-token L0H1 0.214, bound 0.213; bar 0.4)",
    "attn-only-2l-induction@s2": "seed 2: scores decay with repeat length (induction L1H2 0.311, "
                                 "bound 0.301; previous-token L0H3 0.151, bound 0.151; bar 0.4)",
}


def _params() -> list:
    out = []
    for spec in SPECS:
        marks = [pytest.mark.mi_model(spec)]
        if spec in KNOWN_WEAK:
            marks.append(pytest.mark.xfail(strict=True, raises=ClaimFailed, reason=KNOWN_WEAK[spec]))
        out.append(pytest.param(spec, marks=marks, id=spec))
    return out


@pytest.mark.parametrize("spec", _params())
def test_induction_head_found_on_fit_prompts_holds_on_heldout(spec, mi_model):
    found = mi_assert.find_heads(mi_model, "induction", top_k=1, seed=0)
    layer, head, fit_score = found[0]
    assert layer == 1, f"{spec}: the best induction head {found[0]!r} is not in layer 1\n{found}"
    mi_assert.assert_induction_head(mi_model, layer, head)


@pytest.mark.parametrize("spec", _params())
def test_previous_token_head_found_on_fit_prompts_holds_on_heldout(spec, mi_model):
    found = mi_assert.find_heads(mi_model, "previous_token", top_k=1, seed=0)
    layer, head, _ = found[0]
    assert layer == 0, f"{spec}: the best previous-token head {found[0]!r} is not in layer 0\n{found}"
    mi_assert.assert_previous_token_head(mi_model, layer, head)


@pytest.mark.parametrize("spec", [pytest.param(s, marks=pytest.mark.mi_model(s), id=s) for s in SPECS])
def test_no_layer0_head_is_an_induction_head(spec, mi_model):
    """Layer 0 cannot do induction alone (it has no previous-token information to compose with)."""
    for head in range(mi_model.n_heads):
        with pytest.raises(ClaimFailed):
            mi_assert.assert_induction_head(mi_model, 0, head)
