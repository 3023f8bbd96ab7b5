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


def test_untrained_zoo_sae_is_unavailable(monkeypatch, tmp_path):
    from mi_assert import ModelUnavailableError

    monkeypatch.setattr(zoo, "SAE_ROOT", tmp_path)
    with pytest.raises(ModelUnavailableError, match="python -m mi_assert.sae train synthetic-topk"):
        zoo.load_sae("synthetic-topk")
