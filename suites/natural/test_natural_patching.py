"""A causal claim on natural text: the discovered induction heads carry in-context copying.

Clean prompt: a held-out passage ``A``, then ``A``'s first ``k`` tokens again; the model should
continue with ``A[k]``, which only the first copy tells it. Corrupted: another passage ``B``
instead of the first copy (same tokens after it, nothing to copy). Metric: log-probability of
``A[k]`` at the last position. Patching the clean outputs (``attn.hook_z``) of the manifest's two best
induction heads (L3H3, L3H7) into the corrupted run must recover a large share of the
clean − corrupted gap (denoising: sufficiency); patching the two lowest-ranked heads must not.
Measured on the committed checkpoint: 0.61 of the gap (bound 0.48) for the two heads, 0.46 for
L3H3 alone, 0.03 for two layer-0/1 heads.
"""

from __future__ import annotations

import pytest

import mi_assert
from mi_assert.verdict import ClaimFailed
from mi_assert.zoo.natural.prompts import CONFIRM, induction_pairs

N_PROMPTS = 32
N_TOKENS = 40
#: bars set from the measurement above
MIN_RECOVERY = 0.4
MAX_RECOVERY_LOW_RANKED = 0.2
N_HEADS = 2


@pytest.fixture(scope="module")
def pairs():
    clean, corrupted, answers = induction_pairs(N_PROMPTS, N_TOKENS, CONFIRM, seed=2)
    return clean, corrupted, mi_assert.logprob(answers)


def test_induction_heads_recover_copying(kjv, discovered, pairs):
    clean, corrupted, metric = pairs
    heads = [(layer, head) for layer, head, _ in discovered["induction"][:N_HEADS]]
    mi_assert.assert_patching_recovery(kjv, clean, corrupted, heads, metric, min_recovery=MIN_RECOVERY)


def test_low_ranked_heads_do_not_recover_copying(kjv, kjv_manifest, pairs):
    from mi_assert.zoo.natural.manifest import top_heads

    clean, corrupted, metric = pairs
    final = kjv_manifest["steps"][max(kjv_manifest["steps"], key=lambda k: int(k[4:]))]
    low = [(layer, head) for layer, head, _ in top_heads(final["head_scores"]["induction"], k=64)[-N_HEADS:]]
    mi_assert.assert_patching_recovery(kjv, clean, corrupted, low, metric,
                                       max_recovery=MAX_RECOVERY_LOW_RANKED)
    with pytest.raises(ClaimFailed):
        mi_assert.assert_patching_recovery(kjv, clean, corrupted, low, metric, min_recovery=MIN_RECOVERY)
