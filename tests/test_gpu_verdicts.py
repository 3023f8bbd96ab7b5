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


def test_sae_claims_identical_on_gpu():
    """The fast CE splice on CUDA (chunked CE) and the fused StandardSAE give the CPU's numbers
    and verdicts; a zoo top-k SAE takes SAELens's own encode. (The GELU epilogue and fused layer
    norm on CUDA: tests/kernels/test_sae_splice.py::test_splice_on_cuda_equals_cpu_hook_path.)"""
    pytest.importorskip("sae_lens")
    from sae_lens import StandardSAE, StandardSAEConfig

    from mi_assert.kernels.sae import fusable_standard_sae
    from mi_assert.prompts import repeated_tokens
    from mi_assert.sae import load_sae

    def pm_sae(d: int, hook: str, shuffle: bool) -> StandardSAE:
        sae = StandardSAE(StandardSAEConfig(d_in=d, d_sae=2 * d, apply_b_dec_to_input=False))
        eye = torch.eye(d)
        w_dec = torch.cat([eye, -eye], dim=0)
        if shuffle:
            w_dec = w_dec[torch.randperm(2 * d, generator=torch.Generator().manual_seed(0))]
        with torch.no_grad():
            sae.W_enc.copy_(torch.cat([eye, -eye], dim=1))
            sae.W_dec.copy_(w_dec)
            sae.b_enc.zero_()
            sae.b_dec.zero_()
        sae.cfg.metadata.hook_name = hook
        return sae

    cases = [("planted-induction@s0", "blocks.0.hook_resid_post", lambda d, h: pm_sae(d, h, False), 0.9, True),
             ("planted-induction@s0", "blocks.0.hook_resid_post", lambda d, h: pm_sae(d, h, True), 0.9, False),
             ("attn-only-2l-induction@s0", None, lambda d, h: load_sae("attn-only-2l-l0-resid"), 0.3, True),
             ("attn-only-2l-induction@s0", None, lambda d, h: load_sae("attn-only-2l-l0-resid"), 0.9, False)]
    for model_name, hook, make, bar, should_pass in cases:
        estimates = []
        for device in ("cpu", "cuda"):
            handle = mi_assert.load_model(model_name, device=device)
            sae = make(handle.d_model, hook).to(device)
            assert fusable_standard_sae(sae) == (hook is not None)
            rl = 12  # BOS + 12 random tokens twice; CE over the predictable repeated half
            tokens = repeated_tokens(32, rl, handle.d_vocab, seed=5, bos_token_id=handle.bos_token_id)
            positions = range(rl + 1, 2 * rl)
            try:
                ev = mi_assert.assert_sae_reconstruction(sae, handle, tokens, min_ce_loss_recovered=bar,
                                                         ce_positions=positions, n_resamples=500)
                assert should_pass, (model_name, device, ev.estimate)
            except mi_assert.ClaimFailed as failed:
                assert not should_pass, (model_name, device, failed.evidence.estimate)
                ev = failed.evidence
            estimates.append(ev.estimate)
        assert abs(estimates[0] - estimates[1]) < 1e-4, (model_name, estimates)
