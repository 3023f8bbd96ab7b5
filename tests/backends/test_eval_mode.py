"""Measurements run in eval mode: a model left in ``.train()`` (dropout on) gives the same
evidence twice, on every backend, and is in train mode again afterwards."""

from __future__ import annotations

import warnings

import pytest
import torch

from mi_assert import check_ablation_effect, load_model, patching_sweep
from mi_assert.prompts.pairs import induction_pairs
from tests.backends.conftest import BACKENDS

#: the zoo's tiny-gpt2 keeps GPT-2's dropout (attention, residual and embedding: 0.1)
ZOO_WITH_DROPOUT = "tiny-gpt2"


@pytest.fixture(scope="module", params=BACKENDS)
def trained_mode_gpt2(request: pytest.FixtureRequest, one_torch_thread: None):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        handle = load_model(ZOO_WITH_DROPOUT, backend=request.param, device="cpu")
    for module in _modules(handle):
        module.train()
    return handle


def _modules(handle) -> list[torch.nn.Module]:
    roots = [handle.torch_module, handle.model]
    return [m for m in roots if isinstance(m, torch.nn.Module)]


def _all_training(handle) -> bool:
    return all(m.training for root in _modules(handle) for m in root.modules())


def test_hf_checkpoint_has_dropout() -> None:
    from transformers import AutoConfig

    from mi_assert.zoo import registry

    config = AutoConfig.from_pretrained(registry.get(ZOO_WITH_DROPOUT).checkpoint_dir(0))
    assert config.resid_pdrop > 0 and config.attn_pdrop > 0


def test_forward_and_sweep_are_identical_in_train_mode(trained_mode_gpt2) -> None:
    handle = trained_mode_gpt2
    pairs = induction_pairs(handle, seed=0, n_prompts=8)
    assert torch.equal(handle.forward(pairs.clean), handle.forward(pairs.clean))
    first = patching_sweep(handle, pairs, site="head_out", engine="generic")
    second = patching_sweep(handle, pairs, site="head_out", engine="generic")
    assert torch.equal(torch.as_tensor(first.values), torch.as_tensor(second.values))
    assert _all_training(handle), "the user's train mode must be restored"


def test_claim_evidence_is_identical_in_train_mode(trained_mode_gpt2) -> None:
    handle = trained_mode_gpt2
    runs = [check_ablation_effect(handle, "induction_pairs", [(1, 0)], seeds=[0], n_resamples=200,
                                  prompt_kwargs={"n_prompts": 16})
            for _ in range(2)]
    assert (runs[0].estimate, runs[0].low, runs[0].high) == (runs[1].estimate, runs[1].low, runs[1].high)
    assert _all_training(handle)


def test_mixed_modes_are_restored_module_by_module(trained_mode_gpt2) -> None:
    handle = trained_mode_gpt2
    frozen = list(handle.torch_module.modules())[-1]
    frozen.eval()
    try:
        handle.forward(torch.zeros(1, 4, dtype=torch.long))
        assert not frozen.training
        assert handle.torch_module.training
    finally:
        frozen.train()
