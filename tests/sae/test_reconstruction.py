"""assert_sae_reconstruction: true SAEs pass, random and decoder-shuffled SAEs raise."""

from __future__ import annotations

import pytest
import torch

from mi_assert import ClaimFailed, MiAssertInputError, assert_sae_reconstruction
from mi_assert.sae import check_sae_reconstruction, measure_sae_reconstruction
from mi_assert.sae.assertions import reconstruction_evidence
from mi_assert.sae.synthetic import random_sae, shuffled_decoder_sae, true_sae
from tests.evidence_contract import check_evidence as assert_consistent
from tests.sae.conftest import HOOK, SECOND_HALF, exact_sae


def test_true_dictionary_sae_reconstructs_synthetic_data(synth):
    data, x = synth
    ev = assert_sae_reconstruction(true_sae(data), activations=x, min_explained_variance=0.7,
                                   l0_range=(0.5, 5.0), max_dead_fraction=0.2)
    assert ev.passed and len(ev.family) == 4
    assert ev.settings["composite"] == "all members (intersection-union)"
    assert all(m.alpha == 0.05 for m in ev.family)  # each criterion at alpha: no Holm split
    assert_consistent(ev)
    assert ev.settings["sae_architecture"] == "jumprelu" and ev.settings["sae_d_sae"] == data.config.n_features
    # SAELens's pooled formula and the legacy / per-dimension variants are all reported
    assert {"explained_variance (pooled, SAELens>=6)", "explained_variance_legacy (per-token mean)",
            "explained_variance_per_dim (sklearn)"} <= set(ev.details)


def test_default_criterion_is_explained_variance(synth):
    data, x = synth
    ev = assert_sae_reconstruction(true_sae(data), activations=x)
    assert not ev.family  # one criterion: the claim is that member itself
    assert ev.metric == "explained variance (pooled)" and ev.threshold == 0.7
    assert ev.alternative == "greater" and ev.n == x.shape[0]
    assert_consistent(ev)


@pytest.mark.parametrize("make", [lambda d: random_sae(d.config.d, d.config.n_features, seed=3),
                                  lambda d: shuffled_decoder_sae(true_sae(d), seed=3)],
                         ids=["random", "shuffled-decoder"])
def test_broken_saes_fail_reconstruction(synth, make):
    data, x = synth
    with pytest.raises(ClaimFailed) as err:
        assert_sae_reconstruction(make(data), activations=x, min_explained_variance=0.7)
    assert err.value.evidence.estimate < 0.0  # far below, not a near miss
    assert "explained variance" in str(err.value)
    assert_consistent(err.value.evidence)


def test_l0_range_fails_when_sae_is_too_sparse_for_the_range(synth):
    data, x = synth
    with pytest.raises(ClaimFailed) as err:
        assert_sae_reconstruction(true_sae(data), activations=x, l0_range=(3.0, 10.0))
    failing = [m.claim for m in err.value.evidence.family if not m.passed]
    assert failing == ["L0 > 3"]
    assert err.value.evidence.deciding == "L0 > 3"
    assert_consistent(err.value.evidence)


def test_seeds_each_must_pass(synth):
    data, _ = synth
    ev = assert_sae_reconstruction(true_sae(data), activations=lambda s: data.sample(256, 100 + s)[0],
                                   seeds=[0, 1, 2])
    assert [s.seed for s in ev.per_seed] == [0, 1, 2]
    assert ev.n == 256  # the deciding row's prompts, not a sum over seeds
    assert_consistent(ev)


def test_basis_sae_on_planted_model_passes_with_ce_splice(planted_model, repeated, basis):
    ev = assert_sae_reconstruction(basis, planted_model, repeated, min_explained_variance=0.9,
                                   min_ce_loss_recovered=0.9, max_ce_loss_increase=0.1,
                                   l0_range=(1, 10), ce_positions=SECOND_HALF)
    assert ev.passed
    assert ev.model["spec"] == "planted-induction@s0"
    assert ev.settings["sae_hook"] == HOOK
    assert ev.details["ce_zero_ablated"] > ev.details["ce_with_sae"] >= ev.details["ce_clean"] - 0.05
    assert_consistent(ev)


def test_random_sae_on_planted_model_fails_ce_recovered(planted_model, repeated):
    sae = random_sae(planted_model.d_model, 512, seed=0)
    sae.cfg.metadata.hook_name = HOOK
    with pytest.raises(ClaimFailed) as err:
        assert_sae_reconstruction(sae, planted_model, repeated, min_ce_loss_recovered=0.5,
                                  ce_positions=SECOND_HALF)
    assert err.value.evidence.metric == "CE loss recovered"
    assert err.value.evidence.estimate < 0.5
    assert_consistent(err.value.evidence)


def test_ce_recovered_undefined_when_zero_ablation_does_not_hurt(planted_model, repeated, basis):
    # on every position the planted model is overconfident on the unpredictable first half, so
    # its clean loss is above the uniform (zero-ablated) loss: the ratio has no meaning there
    from mi_assert import MiAssertInputError

    with pytest.raises(MiAssertInputError, match="no meaningful denominator"):
        assert_sae_reconstruction(basis, planted_model, repeated, min_ce_loss_recovered=0.9)


def _degraded(sae, kind: str):
    """A copy of ``sae`` that is genuinely bad: its decoder shrunk to half (reconstructions at
    half the norm) or perturbed by Gaussian noise of sd 0.1 per weight (each unit row gets a
    random perturbation of norm 0.1 * sqrt(d_model), larger than the row itself)."""
    import copy

    out = copy.deepcopy(sae)
    with torch.no_grad():
        if kind == "shrunk-decoder":
            out.W_dec.mul_(0.5)
        else:
            gen = torch.Generator().manual_seed(0)
            out.W_dec.add_(0.1 * torch.randn(out.W_dec.shape, generator=gen))
    return out


@pytest.mark.parametrize("kind", ["shrunk-decoder", "noised-decoder"])
def test_degraded_sae_fails_the_thresholds_the_good_one_passes(planted_model, repeated, basis, kind):
    """The same realistic thresholds the basis SAE passes (EV > 0.9, CE recovered > 0.9, CE
    increase < 0.1 nats; see test_basis_sae_on_planted_model_passes_with_ce_splice) fail for a
    corrupted copy of it, on every criterion and far from the threshold."""
    criteria = {"min_explained_variance": 0.9, "min_ce_loss_recovered": 0.9,
                "max_ce_loss_increase": 0.1}
    good = check_sae_reconstruction(basis, planted_model, repeated, ce_positions=SECOND_HALF,
                                    **criteria)
    assert good.passed
    with pytest.raises(ClaimFailed) as err:
        assert_sae_reconstruction(_degraded(basis, kind), planted_model, repeated,
                                  ce_positions=SECOND_HALF, **criteria)
    bad = err.value.evidence
    assert_consistent(bad)
    by_metric = {m.metric: m for m in bad.family}
    assert not any(m.passed for m in bad.family)
    assert by_metric["explained variance (pooled)"].high < 0.7
    assert by_metric["CE loss recovered"].high < 0.5
    assert by_metric["CE loss increase (nats)"].low > 1.0  # nats: the SAE breaks the model


@pytest.mark.parametrize("arch", ["topk", "gated", "jumprelu", "standard"])
def test_every_architecture_runs(planted_model, repeated, arch):
    """SAELens SAEs of every architecture go through the splice; random weights destroy the
    model's predictions, so a realistic CE budget (1 nat) fails while the L0 range holds."""
    import sae_lens.saes as S

    classes = {"topk": (S.TopKSAE, S.TopKSAEConfig, {"k": 4}), "gated": (S.GatedSAE, S.GatedSAEConfig, {}),
               "jumprelu": (S.JumpReLUSAE, S.JumpReLUSAEConfig, {}),
               "standard": (S.StandardSAE, S.StandardSAEConfig, {})}
    cls, cfg_cls, kw = classes[arch]
    torch.manual_seed(0)
    sae = cls(cfg_cls(d_in=planted_model.d_model, d_sae=64, **kw))
    sae.cfg.metadata.hook_name = HOOK
    with pytest.raises(ClaimFailed) as err:
        assert_sae_reconstruction(sae, planted_model, repeated[:8], max_ce_loss_increase=1.0,
                                  l0_range=(0, 64), ce_positions=SECOND_HALF)
    ev = err.value.evidence
    assert_consistent(ev)
    assert ev.settings["sae_architecture"] == arch
    assert ev.deciding == "CE loss increase < 1" and ev.low > 5.0  # nats, not a near miss
    assert [m.passed for m in ev.family if m.metric.startswith("L0")] == [True, True]


def test_fixed_tokens_are_measured_once_for_every_seed(planted_model, repeated, basis, monkeypatch):
    """Seeds differ only in the bootstrap when the tokens are fixed: one forward serves them."""
    from mi_assert.sae import metrics as M

    calls = []
    original = M.measure_on_model
    monkeypatch.setattr(M, "measure_on_model", lambda *a, **k: calls.append(1) or original(*a, **k))
    ev = assert_sae_reconstruction(basis, planted_model, repeated, min_ce_loss_recovered=0.5,
                                   ce_positions=SECOND_HALF, seeds=(0, 1, 2))
    # one measurement, so one row: seeds 1 and 2 only add bootstrap resamples, not evidence
    assert len(calls) == 1 and [r.seed for r in ev.per_seed] == [0]
    assert all("seeds 1, 2 resample the same data as seed 0" in m.details["seeds_sharing_data"]
               for m in ev.family or (ev,))
    calls.clear()
    assert_sae_reconstruction(basis, planted_model, lambda seed: repeated[seed:seed + 16],
                              min_ce_loss_recovered=0.5, ce_positions=SECOND_HALF, seeds=(0, 1))
    assert len(calls) == 2  # a callable draws new tokens per seed


# ----- the headline is one member's, in its own units ---------------------------------------------
def test_headline_is_the_deciding_member_not_a_mix_of_units(planted_model):
    """The planted zoo SAE at EV > 0.7 and L0 in (7.5, 8.5) once printed 'reconstruction criteria
    = 5.617 [0.848, 8.000] ... bound 0.848 > 0.700' (an L0/EV blend): now every headline number
    comes from the deciding member."""
    from mi_assert.prompts import repeated_tokens
    from mi_assert.sae import load_sae

    tokens = repeated_tokens(64, 20, 64, seed=777, bos_token_id=0)
    # a TopK SAE (k = 8): L0 is exactly 8 on every prompt, and a sample without spread is
    # bounded by the metric's range, (0, 8.5) here (k, or the stated upper end above it)
    ev = assert_sae_reconstruction(load_sae("planted-induction-l0-resid"), planted_model, tokens,
                                   min_explained_variance=0.7, l0_range=(7.5, 8.5))
    assert_consistent(ev)
    # the L0 rows have no spread, so their range-based bounds make the closest call and decide
    assert ev.deciding == "L0 > 7.5" and ev.metric.startswith("L0")
    assert ev.threshold == 7.5 and ev.alternative == "greater"
    assert 7.5 < ev.bound < ev.estimate == 8.0 <= ev.high  # L0 units throughout, no EV in it
    assert ev.n == 64 and ev.unit == "prompts"  # prompts resampled by that member, not a sum
    line = ev.summary_line()
    assert "= 8.000" in line and "threshold 7.500: PASS" in line
    ev_member = next(m for m in ev.family if m.claim == "explained variance > 0.7")
    assert 0.8 < ev_member.low <= ev_member.estimate <= ev_member.high < 0.9
    assert [m.n for m in ev.family] == [64, 64, 64]


def test_perfect_sae_headline_is_a_member_at_its_value(synth):
    """A perfect SAE must not print '0.500 [0.000, 1.000] bound 0.000 > threshold 0.900? PASS'."""
    data, x = synth
    ev = assert_sae_reconstruction(exact_sae(data.config.d), activations=x,
                                   min_explained_variance=0.9, max_mse=0.01, max_dead_fraction=0.1)
    assert_consistent(ev)
    by_claim = {m.claim: m for m in ev.family}
    assert by_claim["explained variance > 0.9"].estimate == pytest.approx(1.0, abs=1e-9)
    assert by_claim["MSE < 0.01"].estimate == pytest.approx(0.0, abs=1e-9)
    for m in ev.family:  # nothing to resample: each interval is the value itself
        assert m.low == m.estimate == m.high == m.bound
    assert "0.500 [0.000, 1.000]" not in ev.summary_line()
    assert ev.bound == by_claim[ev.deciding].bound


def test_check_does_not_raise_and_measure_returns_plain_data(synth):
    import numpy as np

    data, x = synth
    sae = random_sae(data.config.d, data.config.n_features, seed=3)
    ev = check_sae_reconstruction(sae, activations=x, min_explained_variance=0.7)
    assert not ev.passed and ev.estimate < 0
    measured = measure_sae_reconstruction(sae, activations=x, seeds=(0, 1))
    assert list(measured.per_seed) == [0, 1]
    d = measured.per_seed[0]
    assert d.sum_sq_err.shape == (x.shape[0],) and d.fired.shape == (x.shape[0], data.config.n_features)
    assert d.metrics["explained_variance"] == pytest.approx(1 - d.sum_sq_err.sum() / d.sum_sq_dev.sum())
    assert isinstance(d.sum_sq_err, np.ndarray) and not d.has_ce
    judged = reconstruction_evidence(measured, min_explained_variance=0.7)
    assert not judged.passed and judged.estimate == pytest.approx(ev.estimate)
    assert [r.seed for r in judged.per_seed] == [0]  # fixed activations: seed 1 repeats seed 0


# ----- every max_* criterion passes on a true claim and fails on a false one ----------------------
def test_max_mse_passes_and_fails(synth):
    data, x = synth  # true dictionary: MSE about 0.12
    ev = assert_sae_reconstruction(true_sae(data), activations=x, max_mse=0.2)
    assert ev.metric.startswith("MSE") and ev.alternative == "less" and ev.estimate < 0.2
    assert_consistent(ev)
    with pytest.raises(ClaimFailed) as err:
        assert_sae_reconstruction(true_sae(data), activations=x, max_mse=0.1)
    assert err.value.evidence.estimate > 0.1
    assert_consistent(err.value.evidence)


def test_max_ce_loss_increase_passes_and_fails(planted_model, repeated, basis):
    # the basis SAE costs about 0.03 nats on the repeated half
    ev = assert_sae_reconstruction(basis, planted_model, repeated, max_ce_loss_increase=0.1,
                                   ce_positions=SECOND_HALF)
    assert ev.metric == "CE loss increase (nats)" and 0 < ev.estimate < ev.bound < 0.1
    assert_consistent(ev)
    with pytest.raises(ClaimFailed) as err:
        assert_sae_reconstruction(basis, planted_model, repeated, max_ce_loss_increase=0.01,
                                  ce_positions=SECOND_HALF)
    assert err.value.evidence.estimate > 0.01
    assert_consistent(err.value.evidence)


def test_l0_upper_end_passes_and_fails(synth):
    data, x = synth  # true dictionary: L0 about 2.2
    ev = assert_sae_reconstruction(true_sae(data), activations=x, l0_range=(0.5, 3.0))
    assert ev.deciding in ("L0 > 0.5", "L0 < 3")
    assert_consistent(ev)
    with pytest.raises(ClaimFailed) as err:
        assert_sae_reconstruction(true_sae(data), activations=x, l0_range=(0.5, 2.0))
    failed = err.value.evidence
    assert [m.claim for m in failed.family if not m.passed] == ["L0 < 2"]
    assert failed.deciding == "L0 < 2" and failed.alternative == "less" and failed.estimate > 2.0
    assert_consistent(failed)


def test_dead_fraction_is_an_exact_upper_bound(planted_model, repeated):
    """Population-dead latents are a subset of sample-dead ones, so the sample's dead fraction is
    itself an upper bound: zero width, estimate inside, n = prompts; 0.385 passes 0.5."""
    from mi_assert.sae import load_sae

    sae = load_sae("planted-induction-l0-resid")
    ev = assert_sae_reconstruction(sae, planted_model, repeated, max_dead_fraction=0.5)
    assert_consistent(ev)
    assert ev.metric == "dead latent fraction" and ev.alternative == "less"
    assert ev.low == ev.estimate == ev.high == ev.bound
    assert 0.3 < ev.estimate < 0.5 and ev.n == repeated.shape[0] and ev.unit == "prompts"
    assert "exact upper bound" in ev.settings["interval"]
    measured = measure_sae_reconstruction(sae, planted_model, repeated, with_ce=False)
    assert ev.estimate == measured.per_seed[0].metrics["dead_fraction"]
    with pytest.raises(ClaimFailed) as err:
        assert_sae_reconstruction(sae, planted_model, repeated, max_dead_fraction=0.3)
    assert err.value.evidence.bound == ev.estimate
    assert_consistent(err.value.evidence)


# ----- options ------------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs,match", [
    ({"min_explained_variance": 1.0}, "explained variance"),
    ({"max_mse": 0.0}, "MSE"),
    ({"max_dead_fraction": 0.0}, "dead latent fraction"),
    ({"max_dead_fraction": 1.5}, "dead latent fraction"),
    ({"l0_range": (1.0, 300.0)}, "L0"),
    ({"l0_range": (-1.0, 3.0)}, "L0"),
    ({"min_explained_variance": float("nan")}, "finite"),
    ({"max_mse": True}, "finite"),
])
def test_thresholds_outside_the_metric_range_are_refused(synth, kwargs, match):
    data, x = synth
    with pytest.raises(MiAssertInputError, match=match):
        check_sae_reconstruction(true_sae(data), activations=x, **kwargs)


def test_duplicated_prompts_are_one_unit(planted_model, repeated, basis):
    copies = repeated[:1].repeat(16, 1)  # 16 copies of one prompt are one prompt
    with pytest.raises(MiAssertInputError, match="1 distinct prompts"):
        check_sae_reconstruction(basis, planted_model, copies, min_explained_variance=0.5)
    with pytest.raises(MiAssertInputError, match="min_prompts"):
        check_sae_reconstruction(basis, planted_model, repeated[:4], min_explained_variance=0.5)
    ev = check_sae_reconstruction(basis, planted_model, repeated[:4], min_explained_variance=0.5,
                                  min_prompts=4)
    assert ev.n == 4
    doubled = check_sae_reconstruction(basis, planted_model, torch.cat([repeated, repeated]),
                                       min_explained_variance=0.5)
    assert doubled.n == repeated.shape[0]


@pytest.mark.parametrize("kwargs,match", [
    ({"seeds": []}, "seeds"), ({"seeds": [0, 0]}, "distinct"), ({"n_resamples": 10}, "n_resamples"),
    ({"min_prompts": 1}, "min_prompts"), ({"alpha": 0.0}, "alpha"),
])
def test_options_are_validated_by_the_shared_validator(synth, kwargs, match):
    data, x = synth
    with pytest.raises(MiAssertInputError, match=match):
        check_sae_reconstruction(true_sae(data), activations=x, **kwargs)
