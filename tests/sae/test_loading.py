"""load_sae: zoo names, local save_model folders, and hub releases (offline: a clear reason)."""

from __future__ import annotations

import pytest

from mi_assert import MiAssertInputError, ModelUnavailableError
from mi_assert.sae import load_sae
from mi_assert.sae.synthetic import true_sae


def test_local_folder_round_trip(tmp_path, synth):
    from mi_assert.sae.metrics import weights_hash

    data, _ = synth
    sae = true_sae(data)
    sae.save_model(tmp_path / "mine")
    loaded = load_sae(tmp_path / "mine")
    assert weights_hash(loaded) == weights_hash(sae)
    assert loaded.cfg.architecture() == "jumprelu"


def test_hub_release_offline_is_unavailable(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import huggingface_hub.constants as hc

    monkeypatch.setattr(hc, "HF_HUB_OFFLINE", True)
    with pytest.raises(ModelUnavailableError, match="gpt2-small-res-jb"):
        load_sae("gpt2-small-res-jb", sae_id="blocks.8.hook_resid_pre")


def test_unknown_names(tmp_path):
    with pytest.raises(MiAssertInputError, match="Did you mean .synthetic-topk."):
        load_sae("synthetic-topkk")
    with pytest.raises(MiAssertInputError, match="does not exist"):
        load_sae("./nowhere/at/all")
    (tmp_path / "empty").mkdir()
    with pytest.raises(MiAssertInputError, match="cfg.json"):
        load_sae(tmp_path / "empty")
