"""Our reconstruction metrics equal SAELens's run_evals on the same tokens (offline)."""

from __future__ import annotations

import pytest

from tests.sae.conftest import HOOK


def saelens_run_evals(handle, sae, tokens):
    """SAELens's run_evals on an in-memory dataset holding exactly ``tokens``."""
    from datasets import Dataset
    from sae_lens.evals import EvalConfig, run_evals
    from sae_lens.training.activation_scaler import ActivationScaler
    from sae_lens.training.activations_store import ActivationsStore

    sae.cfg.metadata.context_size = tokens.shape[1]
    sae.cfg.metadata.prepend_bos = False  # the tokens already start with BOS
    store = ActivationsStore.from_sae(
        handle.model, sae, Dataset.from_dict({"tokens": tokens.tolist()}), streaming=False,
        store_batch_size_prompts=tokens.shape[0], disable_concat_sequences=True,
        context_size=tokens.shape[1])
    cfg = EvalConfig(batch_size_prompts=tokens.shape[0], n_eval_reconstruction_batches=1,
                     n_eval_sparsity_variance_batches=1, compute_ce_loss=True,
                     compute_variance_metrics=True, compute_sparsity_metrics=True)
    metrics, _ = run_evals(sae, store, handle.model, ActivationScaler(), cfg,
                           exclude_special_tokens=[handle.bos_token_id])
    return metrics


@pytest.fixture(scope="module")
def trained_sae():
    from mi_assert.sae import load_sae

    return load_sae("planted-induction-l0-resid")


def test_metrics_match_run_evals(planted_model, repeated, basis):
    from mi_assert.sae.metrics import measure_on_model

    ref = saelens_run_evals(planted_model, basis, repeated)
    stats, ce = measure_on_model(planted_model, basis, repeated, HOOK)
    rq, perf = ref["reconstruction_quality"], ref["model_performance_preservation"]
    assert stats.explained_variance["pooled"] == pytest.approx(rq["explained_variance"], abs=1e-5)
    assert stats.explained_variance["legacy"] == pytest.approx(rq["explained_variance_legacy"], abs=1e-5)
    assert float(stats.sq_err[stats.mask].mean()) == pytest.approx(rq["mse"], rel=1e-5)
    assert stats.cosine == pytest.approx(rq["cossim"], abs=1e-5)
    assert float(stats.l0[stats.mask].mean()) == pytest.approx(ref["sparsity"]["l0"], rel=1e-6)
    assert float(ce.clean.mean()) == pytest.approx(perf["ce_loss_without_sae"], abs=1e-5)
    assert float(ce.sae.mean()) == pytest.approx(perf["ce_loss_with_sae"], abs=1e-5)
    assert float(ce.zero.mean()) == pytest.approx(perf["ce_loss_with_ablation"], abs=1e-5)
    assert ce.recovered() == pytest.approx(perf["ce_loss_score"], abs=1e-4)


@pytest.mark.parametrize("which", ["basis", "trained"])
def test_claimed_explained_variance_is_saelens_explained_variance(planted_model, repeated, basis,
                                                                  trained_sae, which):
    """The number the claim bootstraps (the member's estimate) is run_evals's EV, not a
    look-alike computed another way."""
    from mi_assert.sae import check_sae_reconstruction, measure_sae_reconstruction

    sae = basis if which == "basis" else trained_sae
    ref = saelens_run_evals(planted_model, sae, repeated)["reconstruction_quality"]
    ev = check_sae_reconstruction(sae, planted_model, repeated, min_explained_variance=0.5,
                                  max_mse=10.0)
    (member,) = [m for m in ev.family if m.metric == "explained variance (pooled)"]
    assert member.estimate == pytest.approx(ref["explained_variance"], abs=1e-5)
    (mse,) = [m for m in ev.family if m.metric.startswith("MSE")]
    assert mse.estimate == pytest.approx(ref["mse"], rel=1e-5)
    data = measure_sae_reconstruction(sae, planted_model, repeated, with_ce=False).per_seed[0]
    assert data.metrics["explained_variance"] == member.estimate
