"""save_lens / load_lens: round trip, errors, atomic replace, the nnsight backend."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from mi_assert.errors import MiAssertInputError
from mi_assert.lens.assertions import check_lens_agreement
from mi_assert.lens.measure import measure_lens
from mi_assert.lens.store import available_lenses, load_lens, save_lens


def test_round_trip(tmp_path, kjv, prompts, lens):
    path = save_lens(lens, tmp_path)
    assert path == tmp_path / "lenses" / "tuned"
    assert sorted(p.name for p in path.iterdir()) == ["config.json", "params.pt"]
    loaded = load_lens(tmp_path)
    assert loaded.config == lens.config
    for k, v in lens.layer_translators.state_dict().items():
        assert torch.equal(loaded.layer_translators.state_dict()[k], v.cpu())
    assert (measure_lens(kjv, prompts, loaded).kl == measure_lens(kjv, prompts, lens).kl).all()
    # plain torch can read it, as the tuned-lens package does
    state = torch.load(path / "params.pt", weights_only=True)
    assert set(state) == set(lens.layer_translators.state_dict())


def test_replace_leaves_one_lens(tmp_path, lens, wrong_lens):
    save_lens(lens, tmp_path)
    save_lens(wrong_lens, tmp_path)
    assert available_lenses(tmp_path) == ["tuned"]
    assert [p.name for p in (tmp_path / "lenses").iterdir()] == ["tuned"]
    assert load_lens(tmp_path).config == wrong_lens.config


def test_unknown_name_lists_saved(tmp_path, lens):
    save_lens(lens, tmp_path, name="tuned")
    save_lens(lens, tmp_path, name="other")
    with pytest.raises(MiAssertInputError, match=r"no lens named 'nope'.*saved lenses: other, tuned"):
        load_lens(tmp_path, "nope")
    with pytest.raises(MiAssertInputError, match="saved lenses: none"):
        load_lens(tmp_path / "lenses" / "other", "tuned")


def test_shape_mismatch_names_both_shapes(tmp_path, lens):
    path = save_lens(lens, tmp_path)
    state = torch.load(path / "params.pt", weights_only=True)
    state["1.weight"] = torch.zeros(128, 128)
    torch.save(state, path / "params.pt")
    with pytest.raises(MiAssertInputError, match=r"'1.weight' has shape \(128, 128\).*needs \(256, 256\)"):
        load_lens(tmp_path)


def test_bad_config_and_names(tmp_path, lens):
    path = save_lens(lens, tmp_path)
    (path / "config.json").write_text(json.dumps({"d_model": 256}))
    with pytest.raises(MiAssertInputError, match="lacks base_model_name_or_path"):
        load_lens(tmp_path)
    with pytest.raises(MiAssertInputError, match="lens name"):
        save_lens(lens, tmp_path, name="../x")
    with pytest.raises(MiAssertInputError, match="does not exist"):
        load_lens(tmp_path / "missing")


def test_saved_beside_checkpoint_on_nnsight(tmp_path, kjv, prompts, lens):
    """A lens trained on the TransformerLens backend, saved beside a copy of the checkpoint and
    loaded as lens='tuned' by a claim on the nnsight backend: the same numbers."""
    from mi_assert import load_model
    from tests.lens.conftest import trained_checkpoint

    ckpt = tmp_path / "ckpt"
    shutil.copytree(trained_checkpoint(), ckpt)
    nn_model = load_model(ckpt, backend="nnsight", device="cpu")
    assert nn_model.backend == "nnsight"
    save_lens(lens, nn_model)
    assert available_lenses(nn_model) == ["tuned"]
    ev = check_lens_agreement(nn_model, 2, prompts, "tuned", max_kl=0.5, n_resamples=500)
    assert ev.passed and "lens_warning" not in ev.settings
    tl = measure_lens(kjv, prompts, lens, layers=[1]).kl
    nn = measure_lens(nn_model, prompts, "tuned", layers=[1]).kl
    assert abs(tl - nn).max() < 1e-4


def test_zoo_spec_finds_the_checkpoint_folder():
    from mi_assert.lens.store import checkpoint_dir
    from tests.lens.conftest import trained_checkpoint

    folder = trained_checkpoint()
    assert checkpoint_dir(f"kjv-gpt2-4l:{folder.name}") == folder
    with pytest.raises(MiAssertInputError, match="saved lenses:"):
        load_lens(f"kjv-gpt2-4l:{folder.name}", "no-such-lens")
