"""GPU benchmark: the CE-loss splice behind ``assert_sae_reconstruction`` as a fraction of the
measured fp32 matmul ceiling.

GPT-2-small shape (random weights), an SAE 768 -> 24576 spliced at ``blocks.8.hook_resid_pre``.
CE loss recovered needs three losses: clean, SAE-spliced and zero-ablated; they run as ONE forward
of the batch stacked three times (clean | SAE | zero), the way ``mi_assert.sae.metrics`` does it,
with the SAE's encode/decode as fused GEMMs (``mi_assert.kernels.sae.sae_forward``). FLOPs counted:
three model forwards (blocks + unembedding) plus the SAE's two GEMMs on one third of the rows.

    PYTHONPATH=. python benchmarks/sae_splice_gpu.py [--small]   # --small: tiny shapes on the CPU
"""

from __future__ import annotations

import argparse
import json

import torch

from mi_assert.kernels.floor import layer_flops, median, time_calls
from mi_assert.kernels.sae import sae_forward
from mi_assert.kernels.testing import random_tl_model


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--small", action="store_true")
    args = parser.parse_args()
    device = "cpu" if args.small else "cuda"
    torch.backends.cuda.matmul.allow_tf32 = False  # fp32 throughout
    torch.backends.cudnn.allow_tf32 = False
    if args.small:
        n_layers, d_model, n_heads, d_mlp, d_vocab, d_sae, batch, n_pos, layer = 2, 64, 4, 256, 500, 1024, 4, 32, 1
    else:
        n_layers, d_model, n_heads, d_mlp, d_vocab, d_sae, batch, n_pos, layer = 12, 768, 12, 3072, 50257, 24576, 32, 128, 8
    model = random_tl_model(n_layers=n_layers, d_model=d_model, n_heads=n_heads, d_mlp=d_mlp,
                            d_vocab=d_vocab, n_ctx=n_pos, device=device)
    gen = torch.Generator().manual_seed(0)
    W_enc = (torch.randn(d_model, d_sae, generator=gen) / d_model**0.5).to(device)
    W_dec = (torch.randn(d_sae, d_model, generator=gen) / d_sae**0.5).to(device)
    b_enc = (0.1 * torch.randn(d_sae, generator=gen)).to(device)
    b_dec = (0.1 * torch.randn(d_model, generator=gen)).to(device)
    tokens = torch.randint(0, d_vocab, (batch, n_pos), generator=gen).to(device)
    stacked = tokens.repeat(3, 1)
    hook = f"blocks.{layer}.hook_resid_pre"

    def splice(act: torch.Tensor, hook: object) -> torch.Tensor:
        out = act.clone()
        x = act[batch:2 * batch].reshape(-1, d_model)
        out[batch:2 * batch] = sae_forward(x, W_enc, b_enc, W_dec, b_dec)[0].reshape(batch, n_pos, d_model)
        out[2 * batch:] = 0.0
        return out

    @torch.no_grad()
    def ce_losses() -> torch.Tensor:
        loss = model.run_with_hooks(stacked, fwd_hooks=[(hook, splice)], return_type="loss",
                                    loss_per_token=True)
        return loss.reshape(3, batch, -1).mean(dim=(1, 2))

    @torch.no_grad()
    def clean_forward() -> torch.Tensor:
        return model(tokens, return_type="loss")

    n_tok = batch * n_pos
    d_head = d_model // n_heads
    model_flops = n_layers * layer_flops(d_model, n_heads, d_head, d_mlp, batch, n_pos) + 2 * n_tok * d_model * d_vocab
    sae_flops = 2 * 2 * n_tok * d_model * d_sae
    splice_flops = 3 * model_flops + sae_flops

    size = 8192 if not args.small else 512
    a = torch.randn(size, size, device=device)
    b = torch.randn(size, size, device=device)
    t_mm = median(time_calls(lambda: a @ b, device, warmup=3, repeat=10))
    ceiling = 2 * size**3 / t_mm

    losses = ce_losses()
    t_splice = median(time_calls(ce_losses, device, warmup=2, repeat=10))
    t_clean = median(time_calls(clean_forward, device, warmup=2, repeat=10))
    x = torch.randn(n_tok, d_model, generator=gen).to(device)
    t_sae = median(time_calls(lambda: sae_forward(x, W_enc, b_enc, W_dec, b_dec), device, warmup=3, repeat=20))
    rows = {
        "device": torch.cuda.get_device_name() if device == "cuda" else "cpu",
        "torch": torch.__version__,
        "fp32_matmul_ceiling_tflops": ceiling / 1e12,
        "tokens": n_tok,
        "ce_clean_sae_zero": [float(v) for v in losses],
        "splice_seconds": t_splice,
        "splice_fraction_of_ceiling": splice_flops / t_splice / ceiling,
        "clean_forward_seconds": t_clean,
        "clean_forward_fraction_of_ceiling": model_flops / t_clean / ceiling,
        "splice_over_3_clean_forwards": t_splice / (3 * t_clean),
        "sae_enc_dec_seconds": t_sae,
        "sae_enc_dec_fraction_of_ceiling": sae_flops / t_sae / ceiling,
    }
    print(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
