"""GPU benchmark: the CE-loss splice behind ``assert_sae_reconstruction`` as a fraction of the
measured fp32 matmul ceiling.

GPT-2-small shape (random weights, 32 x 128 tokens), a standard ReLU SAE 768 -> 24576 spliced
at ``blocks.8.hook_resid_pre``. CE loss recovered needs three per-token losses: clean,
SAE-spliced and zero-ablated. Timed:

* ``product``: what ``mi_assert.sae.metrics.measure_on_model`` runs on a TransformerLens model
  for a ``StandardSAE``: ``kernels.sae_splice.spliced_next_token_ce`` with the edit
  ``metrics.clean_sae_zero`` around the fused SAE kernel (``kernels.sae.sae_forward``);
* ``tl_hooks``: the hook-based path (TL ``run_with_hooks`` on the batch stacked three times,
  ``return_type="loss"``), which is what every other backend does;
* the pieces of ``product`` alone (layers before the hook, layers after it on 3 copies, the
  chunked cross-entropy, the SAE), and the GEMM shapes inside them, to show where time goes.

FLOPs counted are the work the three losses need, whichever path runs: the layers before the hook
once, the layers after it and the unembedding (predicting positions only) three times, and the
SAE's two GEMMs once. ``fraction`` = those FLOPs / time / the measured 8192^3 fp32 matmul rate.

    PYTHONPATH=. python benchmarks/sae_splice_gpu.py [--small] [--profile]   # --small: CPU shapes
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
from collections.abc import Callable
from typing import Any

import torch

from benchmarks.support.floor import median, splice_needed_flops, time_calls
from benchmarks.support.testing import random_tl_model
from mi_assert.kernels import sae_splice
from mi_assert.kernels.functional import functional_model
from mi_assert.kernels.sae import sae_forward
from mi_assert.sae.metrics import clean_sae_zero


def matmul_ceiling(size: int, device: str) -> float:
    """FLOP/s of one ``size``^3 fp32 matmul (median of 10)."""
    a = torch.randn(size, size, device=device)
    b = torch.randn(size, size, device=device)
    return 2 * size**3 / median(time_calls(lambda: a @ b, device, warmup=3, repeat=10))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--small", action="store_true")
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    device = "cpu" if args.small else "cuda"
    torch.backends.cuda.matmul.allow_tf32 = False  # fp32 throughout
    torch.backends.cudnn.allow_tf32 = False
    if args.small:
        n_layers, d_model, n_heads, d_mlp, d_vocab, d_sae, batch, n_pos, layer = 2, 64, 4, 256, 501, 1024, 4, 32, 1
    else:
        n_layers, d_model, n_heads, d_mlp, d_vocab, d_sae, batch, n_pos, layer = 12, 768, 12, 3072, 50257, 24576, 32, 128, 8
    model = random_tl_model(n_layers=n_layers, d_model=d_model, n_heads=n_heads, d_mlp=d_mlp,
                            d_vocab=d_vocab, n_ctx=n_pos, device=device)
    fm = functional_model(model)
    gen = torch.Generator().manual_seed(0)
    W_enc = (torch.randn(d_model, d_sae, generator=gen) / d_model**0.5).to(device)
    W_dec = (torch.randn(d_sae, d_model, generator=gen) / d_sae**0.5).to(device)
    b_enc = (0.1 * torch.randn(d_sae, generator=gen)).to(device)
    b_dec = (0.1 * torch.randn(d_model, generator=gen)).to(device)
    tokens = torch.randint(1, d_vocab, (batch, n_pos), generator=gen).to(device)
    tokens[:, 0] = 0  # BOS
    mask = tokens != 0
    hook = f"blocks.{layer}.hook_resid_pre"

    stash: dict[str, torch.Tensor] = {}
    edit = clean_sae_zero(lambda act: sae_forward(act, W_enc, b_enc, W_dec, b_dec), mask, hook, stash)

    @torch.no_grad()
    def product() -> torch.Tensor:
        return sae_splice.spliced_next_token_ce(fm, tokens, layer, "hook_resid_pre", edit)

    stacked = tokens.repeat(3, 1)

    def tl_splice(act: torch.Tensor, hook: Any) -> torch.Tensor:
        return edit(act[:batch])

    @torch.no_grad()
    def tl_hooks() -> torch.Tensor:
        return model.run_with_hooks(stacked, fwd_hooks=[(hook, tl_splice)], return_type="loss",
                                    loss_per_token=True).reshape(3, batch, -1)

    # ----- FLOPs the three losses need ---------------------------------------------------
    n_tok = batch * n_pos
    d_head = d_model // n_heads
    flops = splice_needed_flops(n_layers, d_model, n_heads, d_head, d_mlp, d_vocab, d_sae, batch,
                                n_pos, layer)
    needed = flops["total"]

    ceiling = matmul_ceiling(8192 if not args.small else 512, device)

    def frac(flops: float, seconds: float) -> float:
        return flops / seconds / ceiling

    def bench(fn: Callable[[], Any], repeat: int = 10) -> float:
        return median(time_calls(fn, device, warmup=2, repeat=repeat))

    # correctness: the product's per-prompt CE means against the TL hook path
    mask_pred = mask[:, :-1].double()
    def per_prompt(ce: torch.Tensor) -> torch.Tensor:
        return (ce.double() * mask_pred).sum(-1) / mask_pred.sum(-1)

    ours, theirs = per_prompt(product()), per_prompt(tl_hooks())
    max_err = float((ours - theirs).abs().max())

    rows: dict[str, Any] = {
        "device": torch.cuda.get_device_name() if device == "cuda" else "cpu",
        "torch": torch.__version__,
        "shape": dict(n_layers=n_layers, d_model=d_model, d_mlp=d_mlp, d_vocab=d_vocab, d_sae=d_sae,
                      batch=batch, n_pos=n_pos, hook=hook),
        "fp32_matmul_ceiling_tflops": ceiling / 1e12,
        "needed_gflop": needed / 1e9,
        "max_abs_err_per_prompt_ce_vs_tl": max_err,
        "ce_clean_sae_zero": [float(v) for v in ours.mean(-1)],
    }
    t_prod = bench(product)
    t_tl = bench(tl_hooks)
    rows["product_seconds"] = t_prod
    rows["product_fraction"] = frac(needed, t_prod)
    rows["tl_hooks_seconds"] = t_tl
    rows["tl_hooks_fraction"] = frac(needed, t_tl)
    rows["speedup_vs_tl_hooks"] = t_tl / t_prod

    # the same splice in TransformerLens's op order (no F.layer_norm, no GELU epilogue)
    t_unfused = bench(lambda: sae_splice.spliced_next_token_ce(fm, tokens, layer, "hook_resid_pre",
                                                               edit, fused=False))
    rows["product_tl_op_order_fraction"] = frac(needed, t_unfused)

    # pieces, with the product's fused kernels
    fm = dataclasses.replace(fm, fused=True)
    with torch.no_grad():
        x0 = fm.embed(tokens)
        def prefix() -> torch.Tensor:
            x = x0
            for i in range(layer):
                x = fm.block(i, x)
            return x
        x8 = prefix()
        x8s = x8.repeat(3, 1, 1)
        def suffix() -> torch.Tensor:
            x = x8s
            for i in range(layer, n_layers):
                x = fm.block(i, x)
            return x
        xf = suffix()
        ce_rows = lambda: sae_splice.next_token_ce(fm, xf, stacked)  # noqa: E731
        flat = x8.reshape(-1, d_model)
        sae_only = lambda: sae_forward(flat, W_enc, b_enc, W_dec, b_dec)  # noqa: E731
        for name, fn, part in (("prefix", prefix, flops["prefix"]), ("suffix", suffix, flops["suffix"]),
                               ("cross_entropy", ce_rows, flops["unembed"]), ("sae", sae_only, flops["sae"])):
            t = bench(fn)
            rows[f"{name}_seconds"] = t
            rows[f"{name}_fraction"] = frac(part, t)
        # GEMM shapes of the product (M = rows)
        gemms: dict[str, float] = {}
        for m_rows in (n_tok, 3 * n_tok):
            for (k, n) in ((d_model, 3 * d_model), (d_model, d_model), (d_model, d_mlp), (d_mlp, d_model)):
                A = torch.randn(m_rows, k, device=device)
                B = torch.randn(k, n, device=device)
                bias = torch.randn(n, device=device)
                t = bench(lambda A=A, B=B, bias=bias: torch.addmm(bias, A, B), repeat=20)
                gemms[f"{m_rows}x{k}x{n}"] = frac(2 * m_rows * k * n, t)
        rows["gemm_fraction"] = gemms

    if args.profile and device == "cuda":
        from torch.profiler import ProfilerActivity, profile
        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            for _ in range(3):
                product()
            torch.cuda.synchronize()
        table = prof.key_averages().table(sort_by="cuda_time_total", row_limit=25)
        out = os.environ.get("OUT")
        if out:
            with open(os.path.join(out, "splice_profile.txt"), "w") as fh:
                fh.write(table)
        print(table)
    print(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
