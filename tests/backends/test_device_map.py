"""Models placed with ``device_map`` (accelerate) give the same evidence as the model loaded whole.

Tested on CPU: an explicit per-module map placing every module on ``"cpu"``, and a map that
offloads one block to disk (``offload_folder``). A map needing a GPU is not tested here.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pytest
import torch

import mi_assert
from mi_assert import load_model
from mi_assert.errors import MiAssertInputError
from mi_assert.kernels import support_reason

MODEL = "tiny-gpt2"
MODULES = ("transformer.wte", "transformer.wpe", "transformer.h.0", "transformer.h.1",
           "transformer.ln_f", "lm_head")
CPU_MAP = dict.fromkeys(MODULES, "cpu")
DISK_MAP = {**CPU_MAP, "transformer.h.1": "disk"}
ALL_ON_DISK = dict.fromkeys(MODULES, "disk")


def _load(backend: str, **kwargs: Any) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_model(MODEL, backend=backend, device="cpu", **kwargs)


def _claims(handle: Any) -> dict[str, Any]:
    tokens = torch.randint(2, handle.d_vocab, (8, 12), generator=torch.Generator().manual_seed(0))
    answers = handle.forward(tokens)[:, -2].argmax(-1)
    return {
        "induction_head": mi_assert.check_induction_head(handle, 1, 0, seeds=[0], n_prompts=8,
                                                         repeat_lens=(8,)),
        "copying_head": mi_assert.check_copying_head(handle, 1, 0, seeds=[0]),
        "patching": mi_assert.check_patching_recovery(
            handle, components=["L1H0", "L1H2"], prompts="induction_pairs", seeds=[0],
            prompt_kwargs={"n_prompts": 8}, min_recovery=0.5),
        "logit_lens": mi_assert.check_logit_lens(handle, tokens, answers, from_layer=1,
                                                 position=-2, seeds=[0]),
    }


@pytest.fixture(scope="module")
def reference() -> dict[str, tuple[Any, dict[str, Any]]]:
    """{backend: (handle, claims)} for the model loaded whole, without device_map."""
    handles = {backend: _load(backend) for backend in ("nnsight", "bridge")}
    return {backend: (h, _claims(h)) for backend, h in handles.items()}


def _assert_same_evidence(got: dict[str, Any], want: dict[str, Any]) -> None:
    for claim, ev in want.items():
        assert got[claim].passed == ev.passed, claim
        assert got[claim].n == ev.n, claim
        assert got[claim].estimate == pytest.approx(ev.estimate, abs=1e-5), claim


HOOKS = ["blocks.0.attn.hook_pattern", "blocks.1.hook_resid_post", "ln_final.hook_normalized"]
TOKENS = torch.tensor([[0, 5, 9, 17, 5, 9]])


def _assert_same_activations(handle: Any, ref: Any) -> None:
    logits, cache = handle.run_with_cache(TOKENS, HOOKS)
    ref_logits, ref_cache = ref.run_with_cache(TOKENS, HOOKS)
    assert logits.device == torch.device("cpu")
    assert {t.device for t in cache.values()} == {torch.device("cpu")}
    assert torch.allclose(logits, ref_logits, atol=1e-5)
    for hook in HOOKS:
        assert torch.allclose(cache[hook], ref_cache[hook], atol=1e-5), hook


@pytest.mark.parametrize("backend", ["nnsight", "bridge"])
def test_explicit_cpu_map_gives_the_same_evidence(backend, reference):
    ref, want = reference[backend]
    handle = _load(backend, device_map=CPU_MAP)
    assert handle.device == torch.device("cpu")
    _assert_same_activations(handle, ref)
    _assert_same_evidence(_claims(handle), want)


def test_disk_offload_on_nnsight_gives_the_same_evidence(tmp_path: Path, reference):
    ref, want = reference["nnsight"]
    handle = _load("nnsight", device_map=DISK_MAP, offload_folder=str(tmp_path))
    assert handle.torch_module.hf_device_map["transformer.h.1"] == "disk"
    assert any(p.is_meta for p in handle.torch_module.parameters())
    assert handle.device == torch.device("cpu")
    # the kernels need every weight on one device: an offloaded model keeps the hook path
    assert "sharded or offloaded" in (support_reason(handle) or "")
    assert handle.checkpoint_hash() == ref.checkpoint_hash()
    _assert_same_activations(handle, ref)
    _assert_same_evidence(_claims(handle), want)
    assert any(p.is_meta for p in handle.torch_module.parameters()), "weights stay offloaded"


def test_nnsight_refuses_a_map_whose_first_module_is_on_disk(tmp_path: Path):
    with pytest.raises(MiAssertInputError, match="first module, on 'disk'"):
        _load("nnsight", device_map=ALL_ON_DISK, offload_folder=str(tmp_path))


@pytest.mark.parametrize("kwargs", [{"device_map": DISK_MAP, "offload_folder": "x"},
                                    {"device_map": DISK_MAP}],
                         ids=["offload_folder", "disk_in_map"])
def test_bridge_refuses_disk_offload_naming_nnsight(kwargs):
    with pytest.raises(MiAssertInputError, match="backend='nnsight'"):
        _load("bridge", **kwargs)


def test_remote_local_simulation_on_a_disk_offloaded_model(tmp_path: Path, reference):
    """``--mi-remote local`` traces of a sharded model: nnsight serialises the trace as for NDIF
    and runs it here; primitives are covered in ``test_remote_local.py``, a claim and gradients here."""
    ref, want = reference["nnsight"]
    handle = _load("nnsight", device_map=DISK_MAP, offload_folder=str(tmp_path))
    handle.remote = "local"
    hooks = ["blocks.1.hook_resid_pre"]
    _, _, grads = handle.gradients(TOKENS, hooks, lambda logits: logits[:, -1].sum())
    _, _, ref_grads = ref.gradients(TOKENS, hooks, lambda logits: logits[:, -1].sum())
    assert torch.allclose(grads[hooks[0]], ref_grads[hooks[0]], atol=1e-5)
    got = mi_assert.check_patching_recovery(
        handle, components=["L1H0", "L1H2"], prompts="induction_pairs", seeds=[0],
        prompt_kwargs={"n_prompts": 8}, min_recovery=0.5)
    assert got.estimate == pytest.approx(want["patching"].estimate, abs=1e-5)


def test_transformer_lens_refuses_device_map_instead_of_dropping_it():
    with pytest.raises(MiAssertInputError, match="backend='nnsight'"):
        _load("transformer_lens", device_map=CPU_MAP)
