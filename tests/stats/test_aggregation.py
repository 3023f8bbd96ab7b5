"""Aggregation rules of the engine, tested directly on data whose truth is known.

* the worst row decides (over seeds and over conditions inside a seed), the quorum picks the
  k-th best seed, and the headline is the deciding row's numbers;
* Holm: every member is re-read at its Holm level (alpha / (m - rank)); a member that clears at
  alpha but not at its level fails, and the family with it;
* the one-sided bound is a 95% bound on the correct side (coverage measured on replicates with
  a known mean, "greater" and "less"), for the mean and for AUROC (percentile intervals).

Planted effects are given as standardised effects (estimate / standard error) far enough from
the decision edges that a slightly wider small-sample interval does not move any verdict.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import norm

from mi_assert.stats import AUROC, ClaimSpec, Mean, holm_family
from mi_assert.stats.bootstrap import Resampled
from tests.evidence_contract import check_evidence


def exact_sample(mean: float, sd: float, n: int, seed: int = 0) -> np.ndarray:
    """``n`` values with sample mean and (population) standard deviation exactly as given."""
    z = np.random.default_rng(seed).normal(size=n)
    z = (z - z.mean()) / z.std()
    return mean + sd * z


def planted(t: float, n: int = 400, seed: int = 0) -> np.ndarray:
    """A sample whose mean is ``t`` standard errors above 0 (sd 1)."""
    return exact_sample(t / np.sqrt(n), 1.0, n, seed)


# ---------------------------------------------------------------------------------------
# worst row decides
# ---------------------------------------------------------------------------------------
def test_one_failing_seed_among_passing_ones_fails_and_is_the_headline():
    rows = {0: exact_sample(1.0, 1.0, 64, 0), 1: exact_sample(1.0, 1.0, 64, 1),
            2: exact_sample(0.0, 1.0, 64, 2), 3: exact_sample(1.0, 1.0, 64, 3)}
    ev = ClaimSpec("mean > 0.5", "m", rows, threshold=0.5).evaluate()
    check_evidence(ev)
    by_seed = {r.seed: r for r in ev.per_seed}
    assert [by_seed[s].passed for s in range(4)] == [True, True, False, True]
    assert not ev.passed
    assert ev.deciding == "seed 2"
    bad = by_seed[2]
    assert (ev.estimate, ev.low, ev.high, ev.bound, ev.n) == (bad.estimate, bad.low, bad.high,
                                                            bad.bound, bad.n)
    assert ev.estimate == pytest.approx(0.0, abs=1e-12)
    assert ev.details["seeds_passed"] == "3 of 4"


def test_the_worst_passing_seed_is_the_headline_when_all_pass():
    rows = {0: exact_sample(1.0, 1.0, 64, 0), 1: exact_sample(0.9, 1.0, 64, 1),
            2: exact_sample(1.2, 1.0, 64, 2)}
    ev = ClaimSpec("mean > 0.3", "m", rows, threshold=0.3).evaluate()
    assert ev.passed
    lowest = min(ev.per_seed, key=lambda r: r.bound)
    assert ev.deciding == f"seed {lowest.seed}" and ev.bound == lowest.bound
    assert lowest.seed == 1


def test_less_claims_worst_seed_is_the_highest_bound():
    rows = {0: exact_sample(0.0, 1.0, 64, 0), 1: exact_sample(1.0, 1.0, 64, 1),
            2: exact_sample(0.1, 1.0, 64, 2)}
    ev = ClaimSpec("mean < 0.5", "m", rows, threshold=0.5, alternative="less").evaluate()
    check_evidence(ev)
    assert not ev.passed and ev.deciding == "seed 1"
    assert ev.estimate == pytest.approx(1.0)


def test_worst_condition_inside_a_seed_decides_that_seed():
    # seed 0: both conditions pass; seed 1: one condition fails -> seed 1 fails -> claim fails
    rows = {(0, None, "easy"): exact_sample(1.0, 1.0, 64, 0),
            (0, None, "hard"): exact_sample(1.0, 1.0, 64, 1),
            (1, None, "easy"): exact_sample(1.0, 1.0, 64, 2),
            (1, None, "hard"): exact_sample(0.0, 1.0, 64, 3)}
    ev = ClaimSpec("mean > 0.5", "m", rows, threshold=0.5).evaluate()
    check_evidence(ev)
    assert not ev.passed
    assert ev.deciding == "seed 1, hard"
    assert ev.details["seeds_passed"] == "1 of 2"
    # a quorum of one seed: seed 0 passes both conditions and decides
    ev1 = ClaimSpec("mean > 0.5", "m", rows, threshold=0.5, quorum=1).evaluate()
    assert ev1.passed and ev1.deciding.startswith("seed 0")
    # a quorum never relaxes the conditions: with seed 0 failing one too, nothing passes
    rows[(0, None, "hard")] = exact_sample(0.0, 1.0, 64, 4)
    ev2 = ClaimSpec("mean > 0.5", "m", rows, threshold=0.5, quorum=1).evaluate()
    assert not ev2.passed


def test_quorum_decides_on_the_kth_best_seed():
    means = {0: 1.0, 1: 0.0, 2: 0.9, 3: -0.2}
    rows = {s: exact_sample(m, 1.0, 64, s) for s, m in means.items()}
    spec = ClaimSpec("mean > 0.5", "m", rows, threshold=0.5, quorum=2)
    ev = spec.evaluate()
    assert ev.passed and ev.deciding == "seed 2"  # second best of four
    ev3 = ClaimSpec("mean > 0.5", "m", rows, threshold=0.5, quorum=3).evaluate()
    assert not ev3.passed and ev3.deciding == "seed 1"  # third best fails


# ---------------------------------------------------------------------------------------
# Holm levels
# ---------------------------------------------------------------------------------------
def test_holm_rereads_every_member_at_its_level():
    # three clear effects: all pass, each member's bound is its own spec's bound at its level
    specs = [ClaimSpec(f"m{i}", "m", {0: planted(t, seed=i)}, threshold=0.0)
             for i, t in enumerate([8.0, 6.0, 10.0])]
    ev = holm_family(specs, claim="family", alpha=0.05)
    check_evidence(ev)
    assert ev.passed
    levels = sorted(m.settings["holm_alpha"] for m in ev.family)
    assert levels == pytest.approx([0.05 / 3, 0.05 / 2, 0.05])
    for spec, member in zip(specs, ev.family, strict=True):
        level = member.settings["holm_alpha"]
        assert member.alpha == pytest.approx(level)
        assert member.bound == spec.evaluate(level).bound
        if level < 0.05:  # a stricter level gives a lower lower bound
            assert member.bound < spec.evaluate(0.05).bound
    # the strongest effect (smallest p) is tested at the strictest level
    strongest = next(m for m in ev.family if m.claim == "m2")
    assert strongest.settings["holm_rank"] == 1


def test_member_passing_at_alpha_but_not_at_its_holm_level_fails():
    # five members, each 2.0 standard errors above 0: one-sided z 2.0 clears 1.645 (alpha 0.05)
    # but not 2.326 (alpha/5 = 0.01), so Holm's first step fails and stops the family
    specs = [ClaimSpec(f"m{i}", "m", {0: planted(2.0, seed=i)}, threshold=0.0) for i in range(5)]
    for spec in specs:
        assert spec.evaluate(0.05).passed
        assert not spec.evaluate(0.01).passed
    ev = holm_family(specs, claim="five discoveries", alpha=0.05)
    check_evidence(ev)
    assert not ev.passed
    first = next(m for m in ev.family if m.settings["holm_rank"] == 1)
    assert first.settings["holm_alpha"] == pytest.approx(0.01)
    assert not first.passed and not first.reason
    assert ev.deciding == first.claim
    others = [m for m in ev.family if m is not first]
    assert all(not m.passed and m.reason.startswith("not tested") for m in others)
    assert ev.details["members_passed"] == "0 of 5"


# ---------------------------------------------------------------------------------------
# the one-sided bound: 95%, on the right side, never the estimate
# ---------------------------------------------------------------------------------------
def _non_coverage(alternative: str, replicates: int = 2000, n: int = 100) -> float:
    """Share of replicates whose one-sided 95% bound excludes the true mean (0)."""
    rng = np.random.default_rng(12345)
    wrong = 0
    for i in range(replicates):
        res = Resampled(Mean(rng.normal(0.0, 1.0, n)), n_resamples=1000, seed=i).result(
            0.0, alternative, 0.05)
        wrong += res.bound > 0.0 if alternative == "greater" else res.bound < 0.0
    return wrong / replicates


@pytest.mark.parametrize("alternative", ["greater", "less"])
def test_one_sided_bound_covers_the_true_mean_95_percent(alternative):
    """A 95% one-sided bound excludes the truth about 5% of the time (BCa, n=100: ~5-6%).

    A 90% bound would exclude it about 10% of the time, the point estimate as the bound 50%,
    the wrong side of the interval about 50% (2000 replicates: the binomial sd is 0.5%)."""
    rate = _non_coverage(alternative)
    assert 0.025 <= rate <= 0.085, rate


def test_bound_is_one_side_of_the_two_sided_interval_at_twice_alpha():
    """Documented: the bound at alpha is a side of the 1 - 2 alpha interval of the resamples."""
    rs = Resampled(Mean(exact_sample(0.3, 1.0, 80, 5)), n_resamples=2000, seed=3)
    at_05 = rs.result(0.0, "greater", 0.05)
    at_10 = rs.result(0.0, "greater", 0.10)
    assert at_05.bound == pytest.approx(at_10.low, abs=1e-12)
    assert rs.result(1.0, "less", 0.05).bound == pytest.approx(at_10.high, abs=1e-12)
    assert at_05.low < at_05.bound < at_05.estimate < rs.result(1.0, "less", 0.05).bound < at_05.high


@pytest.mark.parametrize("alternative", ["greater", "less"])
def test_effect_between_the_90_and_95_percent_edges(alternative):
    """An effect 1.47 standard errors beyond the threshold: a 95% bound (z 1.645) does not
    clear it, a 90% bound (z 1.28) does. Both edges are about 0.18 standard errors away."""
    sign = 1.0 if alternative == "greater" else -1.0
    x = sign * planted(1.47, n=400, seed=11)
    spec = ClaimSpec("edge", "m", {0: x}, threshold=0.0, alternative=alternative)
    ev = spec.evaluate(0.05)
    check_evidence(ev)
    assert not ev.passed
    assert spec.evaluate(0.10).passed
    se = 1.0 / np.sqrt(400)
    # the bound lies about 1.645 standard errors from the estimate, on the claim's side
    gap = (ev.estimate - ev.bound) * sign
    assert 1.4 * se < gap < 2.0 * se


@pytest.mark.parametrize("alternative", ["greater", "less"])
def test_estimate_beyond_threshold_without_evidence_fails(alternative):
    # estimate 0.8 standard errors beyond the threshold: not significant, must fail; at 3.5
    # standard errors it must pass
    sign = 1.0 if alternative == "greater" else -1.0
    weak = ClaimSpec("weak", "m", {0: 0.5 + sign * planted(0.8, 200, 1)}, threshold=0.5,
                     alternative=alternative).evaluate()
    strong = ClaimSpec("strong", "m", {0: 0.5 + sign * planted(3.5, 200, 2)}, threshold=0.5,
                       alternative=alternative).evaluate()
    check_evidence(weak)
    assert (weak.estimate - 0.5) * sign > 0 and not weak.passed
    assert strong.passed


# ---------------------------------------------------------------------------------------
# AUROC (percentile interval; positives and negatives resampled apart)
# ---------------------------------------------------------------------------------------
def _auroc_scores(auc: float, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Normal scores whose population AUROC is ``auc`` (shift Phi^-1(auc) * sqrt 2)."""
    shift = norm.ppf(auc) * np.sqrt(2.0)
    return rng.normal(shift, 1.0, n), rng.normal(0.0, 1.0, n)


def test_auroc_lower_bound_covers_the_true_auroc():
    rng = np.random.default_rng(7)
    replicates, excluded = 300, 0
    for i in range(replicates):
        pos, neg = _auroc_scores(0.8, 40, rng)
        res = Resampled(AUROC(pos, neg), n_resamples=1000, seed=i).result(0.5, "greater", 0.05)
        excluded += res.bound > 0.8
    # 95% lower bound: about 5% of replicates exclude the truth (upper quantile: ~95%,
    # the estimate as bound: ~50%)
    assert excluded / replicates <= 0.11


def test_auroc_claim_bound_is_a_lower_bound_below_the_estimate():
    rng = np.random.default_rng(3)
    pos, neg = _auroc_scores(0.8, 60, rng)
    spec = ClaimSpec("separates", "AUROC", {0: AUROC(pos, neg)}, threshold=0.5,
                     value_range=(0.0, 1.0))
    ev = spec.evaluate()
    check_evidence(ev)
    # Hanley-McNeil standard error of an AUROC of 0.8 with 60 + 60 scores
    a = 0.8
    q1, q2 = a / (2 - a), 2 * a * a / (1 + a)
    se = np.sqrt((a * (1 - a) + 59 * (q1 - a * a) + 59 * (q2 - a * a)) / (60 * 60))
    assert ev.low < ev.bound < ev.estimate < ev.high
    assert 1.0 * se < ev.estimate - ev.bound < 2.5 * se
    # a threshold between the bound and the estimate is not established
    between = (ev.bound + ev.estimate) / 2
    assert not ClaimSpec("separates", "AUROC", {0: AUROC(pos, neg)}, threshold=between,
                         value_range=(0.0, 1.0)).evaluate().passed


# ---------------------------------------------------------------------------------------
# every family: a claim with one failing seed among passing ones fails, and that seed is the
# headline (heads and probes here; causal, circuits and SAE in their own test_aggregation.py)
# ---------------------------------------------------------------------------------------
@pytest.fixture
def one_thread():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_heads_one_failing_model_seed_fails_and_is_the_headline(planted, one_thread):
    # planted-induction s0's induction head is L1H0; in s1 L1H0 is the current-token head
    from mi_assert.heads.assertions import check_induction_head
    from mi_assert.zoo import ground_truth

    handle, gt = planted
    head = gt.heads("induction")[0]
    assert ground_truth("planted-induction@s1").heads("induction")[0] != head
    ev = check_induction_head(handle, *head, model_seeds=(0, 1), seeds=(0,))
    check_evidence(ev)
    by_model = {}
    for row in ev.per_seed:
        by_model.setdefault(row.model_seed, []).append(row)
    assert all(r.passed for r in by_model[0]) and not any(r.passed for r in by_model[1])
    assert not ev.passed
    assert ev.deciding.startswith("seed 0, model seed 1, ")
    worst = min(by_model[1], key=lambda r: r.bound)
    assert (ev.estimate, ev.bound) == (worst.estimate, worst.bound)
    assert ev.details["seeds_passed"] == "1 of 2"


def test_heads_one_failing_condition_fails_and_is_the_headline(planted, one_thread):
    # the positional impostor matches the induction target at repeat length offset + 1 only
    from mi_assert.heads.assertions import check_induction_head

    handle, gt = planted
    impostor = gt.heads("positional")[0]
    ev = check_induction_head(handle, *impostor, repeat_lens=(8, gt.offset + 1), seeds=(0, 1))
    check_evidence(ev)
    at_offset = [r for r in ev.per_seed if r.label == f"repeat_len={gt.offset + 1}"]
    at_8 = [r for r in ev.per_seed if r.label == "repeat_len=8"]
    assert all(r.passed for r in at_offset) and not any(r.passed for r in at_8)
    assert not ev.passed and ev.deciding.endswith("repeat_len=8")
    assert ev.details["seeds_passed"] == "0 of 2"


def test_probe_one_failing_seed_fails_and_is_the_headline(planted, one_thread, monkeypatch):
    """Readout family. With fixed prompts DLA and the logit lens hold the same data in every
    seed (merged into one row), so the probe, whose seeds draw their own splits, carries the
    rule: seed 0 is measured where the previous token is written (after layer 0), seed 1 in the
    embedding, where it is not (both real measurements of the planted model)."""
    from mi_assert.causal import probes
    from tests.attribution.conftest import distinct_repeats

    handle, _ = planted
    tokens = distinct_repeats(24, 16, handle.d_vocab, seed=11)

    def previous_token(t):
        import torch

        return torch.cat([torch.full((t.shape[0], 1), -1), t[:, :-1]], dim=1)

    real = probes.measure_probe_accuracy

    def seed_1_in_the_embedding(model, hook, *args, **kwargs):
        good = real(model, hook, *args, **kwargs)
        blind = real(model, "hook_embed", *args, **kwargs)
        good.per_seed[1] = blind.per_seed[1]
        return good

    monkeypatch.setattr(probes, "measure_probe_accuracy", seed_1_in_the_embedding)
    ev = probes.check_probe_accuracy(handle, "blocks.0.hook_resid_post", tokens,
                                     labels_fn=previous_token, position=None, min_accuracy=0.5,
                                     seeds=[0, 1])
    check_evidence(ev)
    accuracy = next(m for m in ev.family if m.metric == "held-out probe accuracy")
    rows = {r.seed: r for r in accuracy.per_seed}
    assert rows[0].passed and rows[0].estimate > 0.9
    assert not rows[1].passed and rows[1].estimate < 0.1
    assert not ev.passed and accuracy.deciding.startswith("seed 1")
    assert (accuracy.estimate, accuracy.bound) == (rows[1].estimate, rows[1].bound)
