"""Degenerate evidence is refused or decided honestly, never passed by accident.

* **Zero variance** on enough distinct units is *decided by the metric's range*: a
  deterministic model can give every prompt the same score, but n equal draws do not exclude a
  share ``1 - alpha^(1/n)`` of mass at the far end of the range, so 16 scores of 1.0 on a
  [0, 1] score bound the mean at 0.05^(1/16) = 0.83 (``method="zero variance"``); a metric
  without a limit on the claim's side (a recovery) is decided at its value.
* **Too few distinct units** is *refused* (``MiAssertInputError`` naming the count, the minimum
  and ``min_prompts``): 2 prompts, 16 copies of one prompt, a 2-vs-2 AUROC, or an AUROC with
  plenty of negatives but 2 positives (each stratum is resampled apart and needs the minimum).
* **Seeds over the same data are not replications**: with explicit prompts the seeds can only
  vary the bootstrap, so a claim on 16 prompts x seeds 0, 1, 2 rests on one row of n = 16 whose
  bootstrap pools the seeds' resamples; it counts one seed, so a quorum cannot pick the luckiest
  of three bootstrap streams of one sample.

Engine-level tests first, then the same refusals through each family's public ``check_*`` /
``assert_*`` (heads, causal, SAE reconstruction, SAE feature recovery and AUROC firing).
"""

from __future__ import annotations

import numpy as np
import pytest

import mi_assert
from mi_assert.errors import MiAssertInputError
from mi_assert.stats import AUROC, ClaimSpec, Mean, RatioOfMeans
from mi_assert.stats.bootstrap import Resampled
from mi_assert.stats.claims import DEFAULT_MIN_UNITS, RowKey, _row_seed
from tests.evidence_contract import check_evidence

HOOK = "blocks.0.hook_resid_post"


def _spec(samples, threshold=0.9, **kw) -> ClaimSpec:
    return ClaimSpec("c", "score", samples, threshold, **kw)


# ----- zero variance: decided on enough units, refused on too few --------------------------------
def test_zero_variance_on_enough_distinct_units_is_decided_by_the_range():
    ids = [f"prompt {i}" for i in range(16)]
    unit = (0.0, 1.0)
    ev = check_evidence(_spec({0: Mean(np.ones(16), units=ids)}, threshold=0.8,
                              value_range=unit).evaluate())
    assert ev.passed and ev.n == 16
    assert ev.bound == pytest.approx(0.05 ** (1 / 16)) and ev.estimate == ev.high == 1.0
    assert ev.per_seed[0].method == "zero variance" and "zero variance" in ev.settings["interval"]
    # 16 ones do not show a mean above 0.9: a share of zeros up to 17% is not excluded
    assert not _spec({0: Mean(np.ones(16), units=ids)}, value_range=unit).evaluate().passed
    # the same data decides a false claim just as plainly: all 0.5 against 0.9 fails
    low = check_evidence(_spec({0: Mean(np.full(16, 0.5), units=ids)}, value_range=unit).evaluate())
    assert not low.passed and low.bound < 0.5
    # and a 'less' claim that the constant lies below 0.9 fails too (1.0 is not below it)
    assert not _spec({0: Mean(np.ones(16), units=ids)}, alternative="less",
                     value_range=unit).evaluate().passed
    unbounded = _spec({0: Mean(np.ones(16), units=ids)}).evaluate()
    assert unbounded.passed and unbounded.bound == 1.0


@pytest.mark.parametrize("n", [1, 2, DEFAULT_MIN_UNITS - 1])
def test_zero_variance_on_too_few_units_is_refused(n):
    with pytest.raises(MiAssertInputError,
                       match=rf"rests on {n} distinct prompts; a confidence bound needs at least "
                             rf"{DEFAULT_MIN_UNITS} \(min_prompts\)"):
        _spec({0: np.ones(n)}).evaluate()


def test_sixteen_copies_of_one_prompt_are_one_unit_and_refused():
    with pytest.raises(MiAssertInputError,
                       match=r"rests on 1 distinct prompts \(16 samples, duplicates merged\)"):
        _spec({0: Mean(np.ones(16), units=["the same prompt"] * 16)}).evaluate()
    with pytest.raises(MiAssertInputError, match="rests on 2 distinct prompts"):
        _spec({0: RatioOfMeans(np.ones(16), np.ones(16), units=[0, 1] * 8)}).evaluate()


# ----- AUROC: the minimum holds per stratum ------------------------------------------------------
def _auroc(n_pos: int, n_neg: int, **kw) -> AUROC:
    rng = np.random.default_rng(0)
    return AUROC(rng.normal(3, 1, n_pos), rng.normal(0, 1, n_neg), **kw)


@pytest.mark.parametrize("n_pos, n_neg, match", [
    (2, 2, "rests on 4 distinct"),
    (2, 30, "2 distinct positive and 30 distinct negative prompts"),
    (30, 3, "30 distinct positive and 3 distinct negative prompts"),
    (DEFAULT_MIN_UNITS - 1, 40, f"{DEFAULT_MIN_UNITS - 1} distinct positive"),
])
def test_auroc_needs_the_minimum_in_each_stratum(n_pos, n_neg, match):
    with pytest.raises(MiAssertInputError, match=match) as info:
        _spec({0: _auroc(n_pos, n_neg)}, threshold=0.7).evaluate()
    assert "min_prompts" in str(info.value)


def test_auroc_copies_count_once_per_stratum_and_enough_of_each_is_decided():
    copies = _auroc(16, 16, positive_units=[0, 1] * 8)  # 16 positives, 2 distinct
    with pytest.raises(MiAssertInputError, match="2 distinct positive and 16 distinct negative"):
        _spec({0: copies}, threshold=0.7).evaluate()
    ev = check_evidence(_spec({0: _auroc(DEFAULT_MIN_UNITS, DEFAULT_MIN_UNITS)}, threshold=0.5,
                              value_range=(0.0, 1.0)).evaluate())
    assert ev.n == 2 * DEFAULT_MIN_UNITS and ev.passed


# ----- seeds over the same data: one row, pooled resamples, one seed ----------------------------
def _fixed(n=16, seed=0):
    return np.random.default_rng(seed).normal(1.0, 0.3, n)


def test_seeds_over_the_same_data_are_one_row_not_replications():
    x = _fixed()
    ids = [("prompt", i) for i in range(16)]
    rows = {s: Mean(x, units=ids) for s in (0, 1, 2)}  # 16 prompts x seeds 0, 1, 2
    spec = _spec(rows, threshold=0.5)
    ev = check_evidence(spec.evaluate())
    assert ev.n == 16 and [r.seed for r in ev.per_seed] == [0]
    assert ev.details["seeds_passed"] == "1 of 1" and ev.deciding == "" and ev.envelope is None
    assert ev.details["seeds_sharing_data"] == (
        "seeds 1, 2 resample the same data as seed 0: one row, not 3 replications, "
        "bootstrapped with 6000 resamples")
    # the one row pools the three seeds' resamples (3 x n_resamples from the row's own stream)
    pooled = Resampled(Mean(x, units=ids), n_resamples=3 * 2000,
                       seed=_row_seed(0, RowKey(0))).result(0.5, "greater", 0.05)
    assert (ev.low, ev.high, ev.bound) == (pooled.low, pooled.high, pooled.bound)
    # the same when the rows are separate arrays of equal values, or the very same object
    same = _spec({s: x.copy() for s in (0, 1, 2)}, threshold=0.5).evaluate()
    assert [r.seed for r in same.per_seed] == [0] and same.n == 16
    stat = Mean(x)
    assert len(_spec({0: stat, 1: stat}, threshold=0.5).evaluate().per_seed) == 1


def test_a_quorum_cannot_count_bootstrap_streams_of_one_sample():
    x = _fixed()
    with pytest.raises(MiAssertInputError,
                       match=r"quorum=2: must lie in 1\.\.1.*seeds over the same data only vary the "
                             r"bootstrap \(seeds 1, 2 resample the same data as seed 0"):
        _spec({s: x for s in (0, 1, 2)}, threshold=0.5, quorum=2).evaluate()
    ev = _spec({s: x for s in (0, 1, 2)}, threshold=0.5, quorum=1).evaluate()
    assert ev.settings["quorum"] == "1 of 1 seeds"


def test_different_data_stays_separate_rows():
    # fresh prompts per seed: three samples, three rows
    ev = _spec({s: _fixed(seed=s) for s in (0, 1, 2)}, threshold=0.5).evaluate()
    assert [r.seed for r in ev.per_seed] == [0, 1, 2] and "seeds_sharing_data" not in ev.details
    # equal values on *different* prompts (unit ids differ) are different samples
    x = _fixed()
    rows = {s: Mean(x, units=[(s, i) for i in range(16)]) for s in (0, 1)}
    assert len(_spec(rows, threshold=0.5).evaluate().per_seed) == 2
    # constant values without unit ids cannot be told apart from a fresh draw: kept apart
    assert len(_spec({0: np.ones(16), 1: np.ones(16)}, value_range=(0.0, 1.0)).evaluate().per_seed) == 2
    # the same data under two model seeds is two models' evidence, not a repeat
    ev = _spec({(0, 0): x, (0, 1): x}, threshold=0.5).evaluate()
    assert [(r.seed, r.model_seed) for r in ev.per_seed] == [(0, 0), (0, 1)]


def test_a_seed_repeats_another_only_when_every_condition_does():
    a, b, c = _fixed(seed=1), _fixed(seed=2), _fixed(seed=3)
    same = {(0, None, "L=8"): a, (0, None, "L=16"): b, (1, None, "L=8"): a, (1, None, "L=16"): b}
    ev = _spec(same, threshold=0.5).evaluate()
    assert [(r.seed, r.label) for r in ev.per_seed] == [(0, "L=8"), (0, "L=16")]
    partly = {**same, (1, None, "L=16"): c}
    ev = _spec(partly, threshold=0.5).evaluate()
    assert len(ev.per_seed) == 4 and "seeds_sharing_data" not in ev.details


# ----- through the families' public API -------------------------------------------------------
@pytest.fixture(scope="module")
def pairs(planted):
    from mi_assert.prompts.pairs import induction_pairs

    handle, gt = planted
    return handle, gt, induction_pairs(handle, seed=0, n_prompts=16)


def _subset(ps, index):
    from mi_assert.prompts import PromptSet

    return PromptSet(ps.clean[index], ps.corrupted[index], ps.correct[index], ps.wrong[index])


def test_heads_refuse_copies_and_two_prompts_and_ignore_seeds_with_given_prompts(pairs):
    handle, gt, ps = pairs
    head = gt.heads("induction")
    with pytest.raises(MiAssertInputError, match=r"1 distinct prompts \(16 samples, duplicates merged\)"):
        mi_assert.check_induction_head(handle, head, prompts=ps.clean[:1].repeat(16, 1))
    with pytest.raises(MiAssertInputError, match="rests on 2 distinct prompts.*min_prompts"):
        mi_assert.check_previous_token_head(handle, gt.heads("previous_token"), prompts=ps.clean[:2])
    ev = mi_assert.assert_induction_head(handle, head, prompts=ps.clean, seeds=[0, 1, 2])
    assert ev.n == 16 and len(ev.per_seed) == 1 and ev.details["seeds_passed"] == "1 of 1"


def test_patching_refuses_copies_and_two_pairs(pairs):
    handle, gt, ps = pairs
    comps = gt.heads("induction")
    with pytest.raises(MiAssertInputError,
                       match=r"1 distinct prompt pairs \(16 given, duplicates merged\).*min_prompts=8"):
        mi_assert.assert_patching_recovery(handle, _subset(ps, [0] * 16), components=comps)
    with pytest.raises(MiAssertInputError, match="2 distinct prompt pairs"):
        mi_assert.assert_patching_recovery(handle, _subset(ps, [0, 1]), components=comps)


def test_patching_a_deterministic_identity_is_decided(pairs):
    """Patching the whole clean residual stream into layer 1 *is* the clean run: recovery 1 on
    every one of 16 distinct pairs, nothing to resample, and recovery has no range to bound
    by: decided at its value (the distinct-pair minimum is what refuses copies)."""
    handle, _, ps = pairs
    ev = check_evidence(mi_assert.assert_patching_recovery(handle, ps, components=["resid_pre1"],
                                                           min_recovery=0.9))
    assert ev.n == 16 and ev.estimate == pytest.approx(1.0, abs=1e-5)
    assert ev.high - ev.low < 1e-5 and ev.bound > 0.9


def test_patching_explicit_prompts_times_seeds_is_n16_not_48(pairs):
    handle, gt, ps = pairs
    comps = gt.heads("induction")
    ev = check_evidence(mi_assert.check_patching_recovery(handle, ps, components=comps,
                                                          seeds=[0, 1, 2], min_recovery=0.9))
    assert ev.passed and ev.n == 16 and [r.seed for r in ev.per_seed] == [0]
    assert ev.details["seeds_passed"] == "1 of 1"
    assert "seeds 1, 2 resample the same data as seed 0" in ev.details["seeds_sharing_data"]
    with pytest.raises(MiAssertInputError, match="only vary the bootstrap"):
        mi_assert.check_patching_recovery(handle, ps, components=comps, seeds=[0, 1, 2], quorum=2)
    # a generator draws fresh held-out prompts per seed: those are replications
    drawn = mi_assert.check_patching_recovery(handle, components=comps, prompts="induction_pairs",
                                              seeds=[0, 1], prompt_kwargs={"n_prompts": 8},
                                              min_recovery=0.9)
    assert [r.seed for r in drawn.per_seed] == [0, 1] and "seeds_sharing_data" not in drawn.details


@pytest.fixture(scope="module")
def sae_setup(planted):
    from mi_assert.prompts import repeated_tokens
    from mi_assert.sae.synthetic import basis_sae

    handle, _ = planted
    return handle, basis_sae(handle.d_model, HOOK, "planted-induction@s0"), repeated_tokens(
        16, 20, 64, seed=1, bos_token_id=0)


def test_sae_reconstruction_refuses_copies_and_pools_seeds(sae_setup):
    from mi_assert.sae import check_sae_reconstruction

    handle, sae, tokens = sae_setup
    with pytest.raises(MiAssertInputError, match=r"1 distinct prompts \(16 samples"):
        check_sae_reconstruction(sae, handle, tokens[:1].repeat(16, 1), min_explained_variance=0.5)
    with pytest.raises(MiAssertInputError, match="rests on 2 distinct prompts"):
        check_sae_reconstruction(sae, handle, tokens[:2], min_explained_variance=0.5)
    ev = check_evidence(check_sae_reconstruction(sae, handle, tokens, min_explained_variance=0.5,
                                                 max_dead_fraction=0.9, seeds=[0, 1, 2]))
    assert ev.n == 16
    for member in ev.family:  # every member, the exact dead-fraction bound included
        assert [r.seed for r in member.per_seed] == [0]
        assert "seeds 1, 2" in member.details["seeds_sharing_data"]


def test_sae_feature_recovery_counts_copied_features_once(synth_features):
    from mi_assert.sae import check_feature_recovery
    from mi_assert.sae.synthetic import true_sae

    data = synth_features
    copies = data.features[:1].repeat(16, 1)
    with pytest.raises(MiAssertInputError, match=r"1 distinct features \(16 samples"):
        check_feature_recovery(true_sae(data), copies)
    ev = check_feature_recovery(true_sae(data), data.features[:16])
    assert ev.n == 16 and ev.unit == "features"


@pytest.fixture(scope="module")
def synth_features():
    from mi_assert.sae.synthetic import CALIBRATION_CONFIG, make_superposition

    return make_superposition(CALIBRATION_CONFIG, seed=0)


def test_auroc_firing_claims_need_enough_positives_and_negatives(sae_setup):
    from mi_assert.sae import check_feature_fires
    from tests.sae.test_features import TOK, _prompts

    handle, sae, _ = sae_setup
    pos, neg = _prompts(5, 5, 40, seed=1), _prompts(None, 5, 40, seed=2)
    ok = check_evidence(check_feature_fires(sae, handle, pos, neg, feature=TOK + 5))
    # perfect separation has no spread: 40 per class bound the AUROC at 0.05^(1/40) = 0.928
    assert ok.passed and ok.n == 80 and ok.bound == pytest.approx(0.05 ** (1 / 40))
    with pytest.raises(MiAssertInputError, match="got 2 distinct of 2 positive and 2 distinct of 2"):
        check_feature_fires(sae, handle, pos[:2], neg[:2], feature=TOK + 5)  # 2-vs-2
    with pytest.raises(MiAssertInputError, match="got 2 distinct of 2 positive and 40 distinct"):
        check_feature_fires(sae, handle, pos[:2], neg, feature=TOK + 5)  # plenty of negatives
    with pytest.raises(MiAssertInputError, match="1 distinct of 16 positive"):
        check_feature_fires(sae, handle, pos[:1].repeat(16, 1), neg, feature=TOK + 5)
    # min_prompts applies to each set: 8 distinct of each is enough at the default
    assert check_feature_fires(sae, handle, pos[:8], neg[:8], feature=TOK + 5, min_auroc=0.6).n == 16
    # explicit prompts under several seeds: one row, n still 80
    seeded = check_feature_fires(sae, handle, pos, neg, feature=TOK + 5, seeds=[0, 1, 2])
    assert seeded.n == 80 and len(seeded.per_seed) == 1


def test_an_auroc_row_built_directly_is_refused_by_the_engine_too():
    """The engine's per-stratum check guards any AUROC claim, not only check_feature_fires."""
    rng = np.random.default_rng(1)
    stat = AUROC(rng.normal(2, 1, 3), rng.normal(0, 1, 50))
    with pytest.raises(MiAssertInputError, match="3 distinct positive and 50 distinct negative"):
        ClaimSpec("latent fires", "AUROC", {0: stat}, 0.8).evaluate()
