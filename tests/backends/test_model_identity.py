"""A model the user passes in gets a stable identity (``custom-<name>-<hash>``) in records,
reports and baseline file names: two models never share a baseline file, and the same model
gets the same identity every time."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pytest
import torch

from mi_assert import as_handle, check_copying_head, load_model
from mi_assert.record import recording
from mi_assert.report import baseline as bl
from mi_assert.report.collect import to_records

CUSTOM = re.compile(r"^custom-(?:(?P<name>[A-Za-z0-9._-]+)-)?(?P<hash>[0-9a-f]{8})$")


def tiny_tl(seed: int = 0, model_name: str = "custom", d_vocab_out: int = -1):
    from transformer_lens import HookedTransformer, HookedTransformerConfig

    cfg = HookedTransformerConfig(n_layers=1, d_model=16, n_ctx=16, d_head=8, n_heads=2,
                                  d_vocab=12, d_vocab_out=d_vocab_out, act_fn="relu",
                                  attn_only=True, seed=seed, model_name=model_name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return HookedTransformer(cfg)


def test_unnamed_models_are_told_apart_by_their_weights() -> None:
    a, b = as_handle(tiny_tl(seed=0)), as_handle(tiny_tl(seed=1))
    assert CUSTOM.match(a.spec) and CUSTOM.match(a.spec)["name"] is None
    assert a.spec != b.spec


def test_the_same_model_gets_the_same_identity() -> None:
    model = tiny_tl(seed=0)
    assert as_handle(model).spec == as_handle(model).spec == as_handle(tiny_tl(seed=0)).spec
    model.cfg.use_attn_result = True  # a runtime switch, not another model
    assert as_handle(model).spec == as_handle(tiny_tl(seed=0)).spec


def test_changed_weights_or_config_are_another_model() -> None:
    model = tiny_tl(seed=0)
    before = as_handle(model).spec
    with torch.no_grad():
        model.W_E[0, 0] += 1.0
    assert as_handle(model).spec != before
    assert as_handle(tiny_tl(seed=0, d_vocab_out=8)).spec != before


def test_own_name_is_part_of_the_identity() -> None:
    spec = as_handle(tiny_tl(model_name="sort-rasp/v2")).spec
    assert CUSTOM.match(spec)["name"] == "v2"
    assert as_handle(tiny_tl(), spec="mine").spec == "mine"  # an explicit spec is kept


def test_loader_specs_are_unchanged(planted) -> None:
    handle, _ = planted
    assert handle.spec == "planted-induction@s0"


def test_hugging_face_model_is_named_after_its_folder(tmp_path: Path) -> None:
    from nnsight import NNsight
    from transformers import AutoModelForCausalLM

    from tests.backends.conftest import make_tiny_gpt2

    folder = make_tiny_gpt2(tmp_path / "my-gpt2")
    hf = AutoModelForCausalLM.from_pretrained(folder, attn_implementation="eager")
    spec = as_handle(NNsight(hf)).spec
    assert CUSTOM.match(spec)["name"] == "my-gpt2"
    assert as_handle(NNsight(hf)).spec == spec


def _run_records(model, nodeid: str) -> list[dict]:
    with recording() as rec:
        rec.set_context(nodeid=nodeid)
        rec.record(check_copying_head(model, 0, 0, seeds=[0], n_resamples=200))  # as assert_* would
        return to_records(rec.drain())


def test_two_custom_models_get_their_own_baseline_files(tmp_path: Path) -> None:
    a, b = tiny_tl(seed=0), tiny_tl(seed=1)
    records_a = _run_records(a, "t.py::test_copying")
    records_b = _run_records(b, "t.py::test_copying")
    spec_a = records_a[0]["evidence"]["model"]["spec"]
    assert spec_a == as_handle(a).spec and CUSTOM.match(spec_a)
    # one run per model, saved under one baseline name: neither file replaces the other
    files_a = bl.save_baseline(tmp_path, "main", records_a)
    files_b = bl.save_baseline(tmp_path, "main", records_b, overwrite=True)
    assert [f.name for f in files_a] == [f"{as_handle(a).spec}.json"]
    assert [f.name for f in files_b] == [f"{as_handle(b).spec}.json"]
    assert sorted(p.name for p in (tmp_path / "main").glob("*.json")) == sorted(
        [files_a[0].name, files_b[0].name])
    loaded = {r["model"]["spec"] for r in bl.load_baseline(tmp_path, "main")}
    assert loaded == {as_handle(a).spec, as_handle(b).spec}


def test_zoo_baseline_file_keeps_the_zoo_spec(tmp_path: Path) -> None:
    records = _run_records(load_model("planted-induction@s0", device="cpu"), "t.py::test_zoo")
    files = bl.save_baseline(tmp_path, "main", records)
    assert [f.name for f in files] == ["planted-induction@s0.json"]


@pytest.mark.parametrize("backend", ["nnsight", "bridge"])
def test_describe_carries_the_identity(backend: str, tmp_path: Path) -> None:
    from tests.backends.conftest import make_tiny_gpt2

    folder = make_tiny_gpt2(tmp_path / "gpt2-run7")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loaded = load_model(str(folder), backend=backend, device="cpu")
    handle = as_handle(loaded.model)  # the user's own object, as they would pass it in
    assert CUSTOM.match(handle.spec)["name"] == "gpt2-run7"
    assert handle.describe()["spec"] == handle.spec
