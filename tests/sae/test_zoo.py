"""Zoo SAEs: committed checkpoints load offline and reproduce their manifest metrics."""

from __future__ import annotations

import pytest

from mi_assert.sae import zoo


def test_manifest_metrics_reproduce():
    entry = zoo.manifest()["synthetic-topk"]
    sae = zoo.load_sae("synthetic-topk")
    assert sae.cfg.architecture() == "topk" and sae.cfg.d_sae == entry["d_sae"]
    metrics = zoo.evaluate_zoo_sae("synthetic-topk", sae)
    for key in ("mmcs", "explained_variance", "l0", "dead_fraction"):
        assert metrics[key] == pytest.approx(entry["metrics"][key], abs=1e-3)


def test_model_source_manifest_metrics_reproduce():
    """The model-source path (SAE spliced into a zoo model: CE loss recovered) reproduces too."""
    name = "planted-induction-l0-resid"
    entry = zoo.manifest()[name]
    metrics = zoo.evaluate_zoo_sae(name, zoo.load_sae(name))
    for key in ("ce_loss_recovered", "ce_clean", "ce_sae", "ce_zero_ablated", "explained_variance",
                "l0", "dead_fraction"):
        assert metrics[key] == pytest.approx(entry["metrics"][key], abs=1e-3), key
    assert metrics["n_tokens"] == entry["metrics"]["n_tokens"]


def test_untrained_zoo_sae_is_unavailable(monkeypatch, tmp_path):
    from mi_assert import ModelUnavailableError

    monkeypatch.setattr(zoo, "SAE_ROOT", tmp_path)
    with pytest.raises(ModelUnavailableError, match="python -m mi_assert.sae train synthetic-topk"):
        zoo.load_sae("synthetic-topk")
