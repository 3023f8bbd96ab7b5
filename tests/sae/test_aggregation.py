"""SAE claims on SAEs and activations whose metrics are known exactly.

A *signed basis* SAE has latents ``+e_i`` and ``-e_i`` for the coordinates in its span
(``relu(x_i) - relu(-x_i) = x_i``): it reconstructs those coordinates exactly and nothing else,
so explained variance, MSE, L0 and the dead fraction follow from how the activations are built:

* coordinates in the span: mean ``MU`` (a non-zero mean, where a centred and an uncentred
  variance differ) plus unit noise; coordinates outside: noise of a chosen scale;
* explained variance (pooled, SAELens) = in-span variance / total variance;
* MSE = mean squared norm of the out-of-span part; L0 = number of non-zero in-span
  coordinates; dead fraction = share of latents that can never fire (negative bias, no input).
"""

from __future__ import annotations

import pytest
import torch

from mi_assert import ClaimFailed, assert_sae_reconstruction
from mi_assert.sae import check_feature_fires, check_sae_reconstruction
from mi_assert.sae import metrics as M
from tests.evidence_contract import check_evidence
from tests.sae.conftest import HOOK, SECOND_HALF

D, SPAN, MU = 16, 8, 3.0


#: tiny models: one torch thread is ~10x faster than several on a loaded CPU
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def signed_basis_sae(d: int = D, span: int = SPAN, n_dead: int = 0):
    """Latents +e_i, -e_i for i < span, then ``n_dead`` latents that never fire."""
    from sae_lens import StandardSAE, StandardSAEConfig

    d_sae = 2 * span + n_dead
    sae = StandardSAE(StandardSAEConfig(d_in=d, d_sae=d_sae, apply_b_dec_to_input=False))
    eye = torch.eye(d)[:span]  # [span, d]
    with torch.no_grad():
        sae.W_enc.zero_()
        sae.W_dec.zero_()
        sae.b_enc.zero_()
        sae.b_dec.zero_()
        sae.W_enc[:, :span] = eye.T
        sae.W_enc[:, span:2 * span] = -eye.T
        sae.W_dec[:span] = eye
        sae.W_dec[span:2 * span] = -eye
        if n_dead:
            sae.b_enc[2 * span:] = -1.0  # no input, negative bias: never active
            sae.W_dec[2 * span:, 0] = 1.0
    return sae


def activations(seed: int, out_scale: float, n: int = 256, active: float = 1.0,
                mu: float = MU, out_sq: float | None = None) -> torch.Tensor:
    """``[n, D]``: in-span coordinates ``mu + N(0, 1)`` (each non-zero with probability
    ``active``), out-of-span ``out_scale * N(0, 1)`` (mean squared norm exactly ``out_sq``)."""
    gen = torch.Generator().manual_seed(seed)
    x_in = mu + torch.randn(n, SPAN, generator=gen)
    if active < 1.0:
        x_in = x_in * (torch.rand(n, SPAN, generator=gen) < active)
    x_out = out_scale * torch.randn(n, D - SPAN, generator=gen)
    if out_sq is not None:
        x_out = x_out * (out_sq / x_out.pow(2).sum(1).mean()).sqrt()
    return torch.cat([x_in, x_out], dim=1)


def saelens_explained_variance(sae, x: torch.Tensor) -> float:
    """SAELens's own explained variance (``sae_lens.evals.ExplainedVarianceCalculator``, what
    ``run_evals`` reports as ``explained_variance``) on activations ``x``."""
    from sae_lens.evals import ExplainedVarianceCalculator

    _, x_hat = M.sae_forward(sae, x)
    calc = ExplainedVarianceCalculator()
    calc.add_batch(sae_output=x_hat, hidden_acts=x)
    return float(calc.compute())


def _uncentred_ev(x: torch.Tensor, x_hat: torch.Tensor) -> float:
    x, x_hat = x.double(), x_hat.double()
    return 1.0 - float((x - x_hat).pow(2).sum() / x.pow(2).sum())


# ---------------------------------------------------------------------------------------
# worst seed decides
# ---------------------------------------------------------------------------------------
def test_one_failing_seed_fails_the_reconstruction_claim():
    # seed 0: out-of-span noise 0.2 (EV 0.96); seed 1: out-of-span noise 1 (EV 0.5)
    sae = signed_basis_sae()
    acts = {0: activations(10, 0.2), 1: activations(11, 1.0), 2: activations(12, 0.2)}
    ev = check_sae_reconstruction(sae, activations=lambda s: acts[s], seeds=[0, 1, 2],
                                  min_explained_variance=0.7, l0_range=(4.0, 12.0))
    check_evidence(ev)
    assert not ev.passed
    member = next(m for m in ev.family if m.metric == "explained variance (pooled)")
    l0 = next(m for m in ev.family if m.metric.startswith("L0") and m.alternative == "less")
    assert l0.passed and l0.estimate == pytest.approx(SPAN)
    rows = {r.seed: r for r in member.per_seed}
    assert rows[0].passed and rows[2].passed and not rows[1].passed
    assert rows[0].estimate > 0.9 and rows[1].estimate == pytest.approx(0.5, abs=0.08)
    assert not member.passed and member.deciding == "seed 1"
    assert (member.estimate, member.bound) == (rows[1].estimate, rows[1].bound)
    # the composite's headline is that member (in its own units) and so that seed
    assert ev.deciding == member.claim and ev.per_seed == member.per_seed
    assert (ev.estimate, ev.bound) == (rows[1].estimate, rows[1].bound)
    with pytest.raises(ClaimFailed):
        assert_sae_reconstruction(sae, activations=lambda s: acts[s], seeds=[0, 1, 2],
                                  min_explained_variance=0.7)
    assert check_sae_reconstruction(sae, activations=lambda s: acts[s], seeds=[0, 2],
                                    min_explained_variance=0.7).passed


# ---------------------------------------------------------------------------------------
# the explained variance the claim bootstraps is SAELens's (centred) explained variance
# ---------------------------------------------------------------------------------------
def test_bootstrapped_explained_variance_is_saelens_explained_variance():
    sae = signed_basis_sae()
    x = activations(3, 1.0)  # in-span mean 3: the uncentred "variance" is far larger
    ref = saelens_explained_variance(sae, x)
    _, x_hat = M.sae_forward(sae, x)
    uncentred = _uncentred_ev(x, x_hat)
    assert ref == pytest.approx(0.5, abs=0.08)  # half the variance lies in the span
    assert uncentred > ref + 0.3  # ~0.91: the two formulas are far apart on this data
    ev = check_sae_reconstruction(sae, activations=x, min_explained_variance=0.3)
    check_evidence(ev)
    # a single criterion: the evidence is the explained-variance member itself
    assert ev.metric == "explained variance (pooled)"
    assert ev.estimate == pytest.approx(ref, abs=1e-5)
    assert ev.per_seed[0].estimate == pytest.approx(ref, abs=1e-5)
    assert ev.details["explained_variance (pooled, SAELens>=6)"] == pytest.approx(ref, abs=1e-5)
    # and it is resampled: a real interval around SAELens's value
    assert ev.low < ev.bound < ev.estimate < ev.high
    assert ev.passed  # 0.5 clears 0.3
    # a threshold between the true (centred) and the uncentred value is not met
    assert not check_sae_reconstruction(sae, activations=x, min_explained_variance=0.75).passed


def test_bootstrapped_explained_variance_is_run_evals_on_the_planted_model(planted_model,
                                                                          repeated, basis):
    from tests.sae.test_against_saelens import saelens_run_evals

    ref = saelens_run_evals(planted_model, basis, repeated)["reconstruction_quality"]
    ev = check_sae_reconstruction(basis, planted_model, repeated, min_explained_variance=0.5,
                                  max_mse=10.0)
    member = next(m for m in ev.family if m.metric == "explained variance (pooled)")
    assert member.estimate == pytest.approx(ref["explained_variance"], abs=1e-5)
    # the uncentred version on the same counted tokens differs by far more than that tolerance
    acts = M.hook_activations(planted_model, repeated, HOOK)
    mask = M.bos_mask(planted_model, repeated)
    _, recon = M.sae_forward(basis, acts)
    uncentred = _uncentred_ev(acts[mask], recon[mask])
    assert abs(uncentred - ref["explained_variance"]) > 1e-3


# ---------------------------------------------------------------------------------------
# every max_* criterion (and the upper end of l0_range) passes and fails
# ---------------------------------------------------------------------------------------
def test_max_mse_passes_and_fails():
    sae = signed_basis_sae()
    x = activations(4, 1.0, out_sq=8.0)  # MSE exactly 8 (sd of a token's error about 4)
    ok = check_sae_reconstruction(sae, activations=x, max_mse=9.0)
    check_evidence(ok)
    assert ok.passed and ok.alternative == "less" and ok.estimate == pytest.approx(8.0)
    assert ok.estimate < ok.bound < 9.0
    bad = check_sae_reconstruction(sae, activations=x, max_mse=7.0)
    check_evidence(bad)
    assert not bad.passed and bad.bound > 7.0
    with pytest.raises(ClaimFailed):
        assert_sae_reconstruction(sae, activations=x, max_mse=7.0)


def test_l0_upper_end_passes_and_fails():
    sae = signed_basis_sae()
    x = activations(5, 0.5, active=0.5)  # each in-span coordinate active half the time: L0 ~ 4
    ok = check_sae_reconstruction(sae, activations=x, l0_range=(1.0, 5.0))
    check_evidence(ok)
    assert ok.passed
    upper = next(m for m in ok.family if m.alternative == "less")
    assert upper.estimate == pytest.approx(SPAN * 0.5, abs=0.3) and upper.bound < 5.0
    bad = check_sae_reconstruction(sae, activations=x, l0_range=(1.0, 3.5))
    check_evidence(bad)
    assert not bad.passed
    failing = next(m for m in bad.family if not m.passed)
    assert failing.alternative == "less" and failing.threshold == 3.5
    assert bad.deciding == failing.claim
    # and the lower end, for symmetry
    assert not check_sae_reconstruction(sae, activations=x, l0_range=(4.5, 8.0)).passed


def test_max_dead_fraction_passes_and_fails():
    sae = signed_basis_sae(n_dead=4)  # 4 of 20 latents can never fire: dead fraction 0.2
    x = activations(6, 0.5, mu=0.0)  # in-span coordinates of both signs: every +-e_i fires
    ok = check_sae_reconstruction(sae, activations=x, max_dead_fraction=0.25)
    check_evidence(ok)
    assert ok.passed and ok.estimate == pytest.approx(0.2) and ok.bound == pytest.approx(0.2)
    bad = check_sae_reconstruction(sae, activations=x, max_dead_fraction=0.15)
    check_evidence(bad)
    assert not bad.passed and bad.estimate == pytest.approx(0.2)
    assert check_sae_reconstruction(signed_basis_sae(), activations=x,
                                    max_dead_fraction=0.05).passed


def test_max_ce_loss_increase_passes_and_fails(planted_model, repeated, basis):
    # the basis SAE reads the planted residual stream's one-hot codes exactly and drops only
    # the weight noise: the CE loss barely moves
    ok = check_sae_reconstruction(basis, planted_model, repeated, max_ce_loss_increase=0.1,
                                  ce_positions=SECOND_HALF)
    check_evidence(ok)
    assert ok.passed and abs(ok.estimate) < 0.05 and ok.low < ok.high
    # the same SAE with the previous-token subspace dropped from its reconstruction: the
    # induction head no longer finds its target, the second half is no longer predicted
    from mi_assert.sae.synthetic import basis_sae

    V, C = planted_model.d_vocab, planted_model.n_ctx
    broken = basis_sae(planted_model.d_model, HOOK, "planted-induction@s0")
    with torch.no_grad():
        broken.W_dec[V + C: 2 * V + C] = 0.0
    bad = check_sae_reconstruction(broken, planted_model, repeated, max_ce_loss_increase=0.5,
                                   ce_positions=SECOND_HALF)
    check_evidence(bad)
    assert not bad.passed and bad.estimate > 1.0


# ---------------------------------------------------------------------------------------
# AUROC of a feature: the bound is a lower bound, not the estimate
# ---------------------------------------------------------------------------------------
def _prompts(n: int, n_with: int, seed: int) -> torch.Tensor:
    """BOS + 12 tokens without token 5; the first ``n_with`` prompts get a 5 somewhere."""
    gen = torch.Generator().manual_seed(seed)
    vocab = torch.tensor([t for t in range(1, 64) if t != 5])
    toks = vocab[torch.randint(0, len(vocab), (n, 12), generator=gen)]
    where = torch.randint(0, 12, (n,), generator=gen)
    toks[torch.arange(n_with), where[:n_with]] = 5
    return torch.cat([torch.zeros(n, 1, dtype=torch.long), toks], dim=1)


def test_feature_fires_auroc_bound_is_a_lower_bound(planted_model, basis):
    # the token-5 latent fires on 18 of 24 positives and on no negative: AUROC = 18/24 + 6/24
    # / 2 = 0.875 exactly (ties count half); its standard error is about 0.04
    pos, neg = _prompts(24, 18, seed=1), _prompts(24, 0, seed=2)
    ev = check_feature_fires(basis, planted_model, pos, neg, feature=5, min_auroc=0.6)
    check_evidence(ev)
    assert ev.estimate == pytest.approx(0.875)
    assert ev.passed  # 0.875 with 48 prompts clears 0.6
    assert ev.bound < ev.estimate - 0.03  # about 1.6 standard errors below
    between = round((ev.bound + ev.estimate) / 2, 3)
    assert not check_feature_fires(basis, planted_model, pos, neg, feature=5,
                                   min_auroc=between).passed
    assert not check_feature_fires(basis, planted_model, pos, neg, feature=5,
                                   min_auroc=0.9).passed
