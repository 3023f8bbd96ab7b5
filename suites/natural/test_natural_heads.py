"""Heads that emerged in ``kjv-gpt2-4l``, a model trained on the King James Bible.

Nobody set these heads: ``find_heads`` ranked them on the *fit* half of the held-out chapters
(recorded in the model's manifest), and the claims here check them on the *confirm* half, with
string prompts through the model's own BPE tokenizer: natural passages seen twice
(``passage + passage``).

Measured on the committed checkpoint (fit / confirm estimates, confirm bound):
- induction L3H3: 0.41 / 0.40, bound 0.38; previous-token L0H2: 0.36 / 0.36, bound 0.355.
  Both are partial heads: about 40 % of their attention goes where the role says. At the
  library's default bar (0.4, TransformerLens's detector threshold) neither holds, which is
  recorded as an expected failure; the claims that hold are at :data:`NATURAL_BAR`.
- A head the ranking put last must fail the same claims.
"""

from __future__ import annotations

import pytest

import mi_assert
from mi_assert.verdict import ClaimFailed
from mi_assert.zoo.natural.prompts import CONFIRM, repeated_passages

#: distinct passages per claim and their length in tokens (the prompt holds two copies)
N_PROMPTS = 48
N_TOKENS = 48
#: the bar the emerged heads clear on natural text (set from the measurement above)
NATURAL_BAR = 0.3
ASSERT_ROLE = {"induction": mi_assert.assert_induction_head,
               "previous_token": mi_assert.assert_previous_token_head}


@pytest.fixture(scope="module")
def confirm_prompts():
    return repeated_passages(N_PROMPTS, N_TOKENS, CONFIRM, seed=1)


@pytest.mark.parametrize("role", ["induction", "previous_token"])
def test_discovered_head_holds_on_confirm_text(kjv, discovered, confirm_prompts, role):
    layer, head, _ = discovered[role][0]
    ASSERT_ROLE[role](kjv, layer, head, prompts=confirm_prompts, threshold=NATURAL_BAR)


@pytest.mark.xfail(strict=True, raises=ClaimFailed,
                   reason="partial heads: confirm estimates 0.40 (induction L3H3, bound 0.38) and "
                          "0.36 (previous-token L0H2, bound 0.355) sit under the default 0.4 bar")
@pytest.mark.parametrize("role", ["induction", "previous_token"])
def test_discovered_head_at_the_default_bar(kjv, discovered, confirm_prompts, role):
    layer, head, _ = discovered[role][0]
    ASSERT_ROLE[role](kjv, layer, head, prompts=confirm_prompts)


@pytest.mark.parametrize("role", ["induction", "previous_token"])
def test_low_ranked_head_is_not_that_role(kjv, kjv_manifest, confirm_prompts, role):
    from mi_assert.zoo.natural.manifest import top_heads

    final = kjv_manifest["steps"][max(kjv_manifest["steps"], key=lambda k: int(k[4:]))]
    layer, head, _ = top_heads(final["head_scores"][role], k=64)[-1]
    with pytest.raises(ClaimFailed):
        ASSERT_ROLE[role](kjv, layer, head, prompts=confirm_prompts, threshold=NATURAL_BAR)
