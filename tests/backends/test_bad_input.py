"""Bad input to the loaders and backends fails with errors that say what is wrong."""

from __future__ import annotations

import pytest
import torch

from mi_assert import MiAssertInputError, ModelUnavailableError, as_handle, load_model
from mi_assert.errors import UnsupportedModelError


def test_unknown_backend(tiny_gpt2_dir) -> None:
    with pytest.raises(MiAssertInputError, match=r"unknown backend 'pyvene'.*nnsight"):
        load_model(str(tiny_gpt2_dir), backend="pyvene")


def test_bridge_refuses_native_tl_models() -> None:
    with pytest.raises(MiAssertInputError, match="TransformerBridge wraps Hugging Face models"):
        load_model("planted-induction@s0", backend="bridge", device="cpu")


@pytest.mark.parametrize("backend", ["nnsight", "bridge", "transformer_lens"])
def test_unsupported_architecture_names_the_supported_ones(tmp_path, backend: str) -> None:
    from transformers import GemmaConfig

    GemmaConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                vocab_size=50).save_pretrained(tmp_path)
    with pytest.raises(UnsupportedModelError,
                       match=r"model_type 'gemma'.*supported model types: gpt2, gpt_neox, llama, mistral, qwen2"):
        load_model(str(tmp_path), backend=backend, device="cpu")


def test_as_handle_refuses_plain_and_unmappable_modules() -> None:
    import nnsight

    with pytest.raises(UnsupportedModelError, match="HookedTransformer"):
        as_handle(torch.nn.Linear(3, 3))
    with pytest.raises(UnsupportedModelError, match="cannot map to canonical hooks"):
        as_handle(nnsight.NNsight(torch.nn.Linear(3, 3)))


def test_hub_name_without_weights_is_unavailable(monkeypatch) -> None:
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    for backend in ("nnsight", "bridge", "transformer_lens"):
        with pytest.raises(ModelUnavailableError, match=r"'nobody/no-such-model-xyz' could not be loaded.*Zoo models work offline"):
            load_model("nobody/no-such-model-xyz", backend=backend, device="cpu")


def test_missing_path() -> None:
    with pytest.raises(MiAssertInputError, match="does not exist"):
        load_model("/no/such/folder/model", backend="nnsight")


def test_unknown_loader_kwarg(tiny_gpt2_dir) -> None:
    with pytest.raises(MiAssertInputError, match=r"unknown keyword argument.*allowed: device_map"):
        load_model(str(tiny_gpt2_dir), backend="nnsight", device="cpu", flash=True)


def test_edit_returning_wrong_shape(tiny_gpt2_dir) -> None:
    handle = load_model(str(tiny_gpt2_dir), backend="nnsight", device="cpu")
    with pytest.raises(MiAssertInputError, match="must return a tensor of the activation's shape"):
        handle.run_with_edits(torch.randint(1, 100, (1, 4)), {"blocks.0.attn.hook_z": lambda z: z[..., 0]})


def test_unknown_hook_on_nnsight(tiny_gpt2_dir) -> None:
    from mi_assert import UnknownHookError

    handle = load_model(str(tiny_gpt2_dir), backend="nnsight", device="cpu")
    with pytest.raises(UnknownHookError, match="hook_resid_pre"):
        handle.run_with_cache(torch.randint(1, 100, (1, 4)), ["blocks.0.hook_resid_pree"])
