"""On a GPU the same claims give the same verdicts and numbers as on the CPU (skips without CUDA)."""

from __future__ import annotations

import pytest
import torch

import mi_assert
from mi_assert.prompts.generators import make_split

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]


@pytest.fixture(scope="module")
def handles():
    return (mi_assert.load_model("planted-induction@s0", device="cpu"),
            mi_assert.load_model("planted-induction@s0", device="auto"))


def test_auto_device_picks_cuda(handles):
    _, gpu = handles
    assert gpu.device.type == "cuda"


def test_head_verdicts_identical_on_gpu(handles):
    cpu, gpu = handles
    circuit = cpu.meta["ground_truth"]
    (layer, head), = circuit.heads("induction")
    ev_cpu = mi_assert.assert_induction_head(cpu, layer, head)
    ev_gpu = mi_assert.assert_induction_head(gpu, layer, head)
    assert abs(ev_cpu.estimate - ev_gpu.estimate) < 1e-4
    (layer, head), = circuit.heads("positional")
    for model in (cpu, gpu):
        with pytest.raises(AssertionError):
            mi_assert.assert_induction_head(model, layer, head)


def test_patching_sweep_equal_on_gpu(handles):
    cpu, gpu = handles
    prompts = make_split(cpu, "induction_pairs", seed=0).heldout
    results = []
    for model in (cpu, gpu):
        metric = mi_assert.logit_diff(prompts.correct.to(model.device), prompts.wrong.to(model.device))
        sweep = mi_assert.patching_sweep(model, prompts.clean.to(model.device),
                                         prompts.corrupted.to(model.device), metric, site="head_out")
        results.append(torch.as_tensor(sweep.values).float().cpu())
    assert torch.allclose(results[0], results[1], atol=1e-4), (results[0] - results[1]).abs().max()
