"""SAE features on ``kjv-gpt2-4l``: a latent that marks the word ``LORD``, found on fit text and
asserted on held-out text, with its dashboard in the report.

The SAE (``kjv-gpt2-4l-l2-resid``: SAELens top-k, trained with SAELens's ``SAETrainer`` on the
layer-2 residual stream over training chapters) is in the SAE zoo. ``feature_discovery`` picks
the latent with the best fit-split AUROC for "the last token is LORD" against "the last token
is another capitalised word"; here it must separate the confirm split's windows too, and the
claim with the two sets swapped must fail. Steering: adding the latent's decoder row at the
last position raises the log-probability of the token it boosts most directly.
"""

from __future__ import annotations

import pytest

import mi_assert
from mi_assert.verdict import ClaimFailed
from mi_assert.zoo.natural import prompts as P

MIN_AUROC = 0.8
N_WINDOWS = 48


@pytest.fixture(scope="module")
def sae():
    from mi_assert.errors import ModelUnavailableError
    from mi_assert.sae.zoo import load_sae

    try:
        return load_sae("kjv-gpt2-4l-l2-resid")
    except ModelUnavailableError as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def found(kjv, sae):
    from feature_discovery import find_lord_feature

    result = find_lord_feature(kjv, sae)
    print(f"\nlatent {result.feature}: fit AUROC {result.fit_auroc}, boosts {result.top_boosted}")
    return result


@pytest.fixture(scope="module")
def confirm_windows():
    from feature_discovery import is_lord, other_capitalised

    pos = P.ending_windows(N_WINDOWS, 31, P.CONFIRM, is_lord, seed=5)
    neg = P.ending_windows(N_WINDOWS, 31, P.CONFIRM, other_capitalised, seed=5)
    return pos, neg


def test_lord_feature_fires_on_held_out_text(kjv, sae, found, confirm_windows):
    pos, neg = confirm_windows
    mi_assert.assert_feature_fires(sae, kjv, pos, neg, found.feature, min_auroc=MIN_AUROC, position=-1)


def test_the_claim_fails_for_swapped_concepts(kjv, sae, found, confirm_windows):
    pos, neg = confirm_windows
    with pytest.raises(ClaimFailed):
        mi_assert.assert_feature_fires(sae, kjv, neg, pos, found.feature, min_auroc=MIN_AUROC, position=-1)


def test_steering_with_the_feature_raises_its_top_token(kjv, sae, found, confirm_windows):
    _, neg = confirm_windows
    tok = P.tokenizer()
    target = tok(found.top_boosted[0][0])["input_ids"]
    assert len(target) == 1, found.top_boosted
    metric = mi_assert.logprob([target[0]] * neg.shape[0])
    mi_assert.assert_feature_steering(sae, kjv, neg, found.feature, metric, scale=8.0, min_effect=0.5,
                                      positions=[neg.shape[1] - 1])


def test_steering_with_a_latent_that_suppresses_the_token_fails(kjv, sae, found, confirm_windows):
    import torch

    _, neg = confirm_windows
    tok = P.tokenizer()
    target = tok(found.top_boosted[0][0])["input_ids"][0]
    with torch.no_grad():
        direct = sae.W_dec @ kjv.model.W_U[:, target]  # every latent's direct effect on the token
    other = int(direct.argmin())
    metric = mi_assert.logprob([target] * neg.shape[0])
    with pytest.raises(ClaimFailed):
        mi_assert.assert_feature_steering(sae, kjv, neg, other, metric, scale=8.0, min_effect=0.5,
                                          positions=[neg.shape[1] - 1])
