"""All-heads output sweep on a Llama-3-8B-shaped model in bf16: time against its FLOP floor
and against nnsight's batched-invoke equivalent, error against fp32, peak memory. One command
on the GPU machine (wheels as in docs/benchmarks.md):

    PYTHONPATH=. python benchmarks/llama_sweep_gpu.py --json $OUT/llama.json

``--small`` runs the same pipeline on a tiny Llama-shaped model on the CPU (a dry run of the
script, in the tests).

The model is a Hugging Face ``LlamaForCausalLM`` with random fp32 weights, run through the
nnsight backend, so the kernels use its TransformerLens-layout twin
(:mod:`mi_assert.kernels.handles`) with ``precision="bf16"``. Three figures:

* ours: ``fast_patching_sweep(..., "head_out", precision="bf16")`` on ``--prompts`` x
  ``--tokens`` (32 x 64), median of ``--repeat`` calls after a warm-up; against the floor
  (``benchmarks.support.floor``, GQA and the gated MLP counted) at the measured bf16 matmul rate;
* error: the bf16 sweep against the fp32 kernel sweep on ``--ref-prompts`` of the prompts (an
  fp32 sweep of the full batch would take minutes), over the largest |logit| of the corrupted run;
* nnsight: one invoke per (layer, head) variant on the same model cast to bf16, timed on the
  variants of ``--nnsight-layers`` and scaled to every layer (nnsight shares no prefix between
  variants, so its cost is linear in them; the JSON keeps the measured part).

Memory at 8B: the fp32 model (32 GB), the twin's weights (32 GB, and as much again while the
converted state dict is loaded), the fused q/k/v weights and the bf16 copy of every call (16 GB),
then the activations the auto-chunking fits into 60% of what is free. ``--layers`` keeps the
shape with fewer layers if that does not fit.
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

os.environ.setdefault("TQDM_DISABLE", "1")

import torch  # noqa: E402

from benchmarks.run_gpu import device_info, matmul_rate, peak_bytes  # noqa: E402
from benchmarks.support import anchors  # noqa: E402
from benchmarks.support.floor import head_sweep_floor_flops, median, time_calls  # noqa: E402
from benchmarks.support.testing import random_pair  # noqa: E402
from mi_assert.backends.nnsight_backend import NNsightHandle  # noqa: E402
from mi_assert.kernels import fast_patching_sweep, support_reason  # noqa: E402

SHAPES: dict[str, dict[str, Any]] = {
    "llama-3-8b": dict(num_hidden_layers=32, hidden_size=4096, num_attention_heads=32,
                       num_key_value_heads=8, intermediate_size=14336, vocab_size=128256,
                       rope_theta=500000.0, max_position_embeddings=8192),
    "small": dict(num_hidden_layers=3, hidden_size=64, num_attention_heads=4,
                  num_key_value_heads=2, intermediate_size=128, vocab_size=257,
                  rope_theta=500000.0, max_position_embeddings=128),
}


def llama_model(shape: dict[str, Any], device: torch.device, seed: int = 0) -> Any:
    """A random fp32 ``LlamaForCausalLM`` of ``shape``, built on ``device``."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(**shape, tie_word_embeddings=False, attn_implementation="eager")
    with torch.device(device):
        model = LlamaForCausalLM(config)
    return model.eval().requires_grad_(False)


def floor_flops(config: Any, batch: int, n_pos: int) -> float:
    d_head = config.hidden_size // config.num_attention_heads
    return head_sweep_floor_flops(config.num_hidden_layers, config.hidden_size,
                                  config.num_attention_heads, d_head, config.intermediate_size,
                                  config.vocab_size, batch, n_pos,
                                  n_kv_heads=config.num_key_value_heads, gated=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--small", action="store_true", help="tiny model on the CPU: a dry run")
    parser.add_argument("--prompts", type=int, default=None, help="(32; small 4)")
    parser.add_argument("--tokens", type=int, default=None, help="(64; small 12)")
    parser.add_argument("--ref-prompts", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--nnsight-layers", type=int, nargs="+", default=[0, 31])
    parser.add_argument("--skip-nnsight", action="store_true")
    parser.add_argument("--layers", type=int, default=None,
                        help="fewer layers of the same shape (if memory runs short)")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() and not args.small else "cpu")
    torch.set_float32_matmul_precision("highest")
    shape = dict(SHAPES["small" if args.small else "llama-3-8b"])
    if args.layers is not None:
        shape["num_hidden_layers"] = args.layers
    batch = args.prompts or (4 if args.small else 32)
    n_pos = args.tokens or (12 if args.small else 64)
    result: dict[str, Any] = {"env": device_info(device), "shape": shape, "batch": batch,
                              "n_pos": n_pos}
    bf16_rate = matmul_rate(device, torch.bfloat16, 8192 if device.type == "cuda" else 512)
    result["bf16_flops_per_s"] = bf16_rate
    print("env:", json.dumps(result["env"]), f"bf16 matmul {bf16_rate / 1e12:.1f} TFLOP/s",
          flush=True)

    hf = llama_model(shape, device)
    handle = NNsightHandle.from_hf(hf)
    reason = support_reason(handle)
    if reason is not None:
        raise SystemExit(f"the kernels do not take this model: {reason}")
    clean, corrupted, metric = random_pair(shape["vocab_size"], batch, n_pos, device=str(device))

    def ours() -> torch.Tensor:
        out = fast_patching_sweep(handle, clean, corrupted, metric, "head_out", precision="bf16")
        if out is None:
            raise SystemExit("fast_patching_sweep fell back to the hook path")
        return out

    bf16 = ours()  # warm-up; builds the twin once
    seconds = median(time_calls(ours, device, warmup=0, repeat=args.repeat))
    floor_s = floor_flops(hf.config, batch, n_pos) / bf16_rate
    result.update(ours_seconds=seconds, floor_seconds=floor_s, over_floor=seconds / floor_s,
                  peak_bytes=peak_bytes(ours, device))
    print(f"ours bf16 {seconds:.3f} s = {seconds / floor_s:.2f}x floor ({floor_s:.3f} s); peak "
          f"{(result['peak_bytes'] or 0) / 2**30:.1f} GiB", flush=True)

    ref_clean, ref_corrupted, ref_metric = random_pair(shape["vocab_size"], args.ref_prompts,
                                                       n_pos, seed=1, device=str(device))
    fp32 = fast_patching_sweep(handle, ref_clean, ref_corrupted, ref_metric, "head_out")
    low = fast_patching_sweep(handle, ref_clean, ref_corrupted, ref_metric, "head_out",
                              precision="bf16")
    assert fp32 is not None and low is not None
    with torch.no_grad():
        scale = float(handle.forward(ref_corrupted).abs().max())
    err = float((low.float() - fp32.float()).abs().max())
    result.update(bf16_max_abs_err=err, logit_scale=scale, bf16_relative_err=err / scale)
    print(f"bf16 vs fp32 ({args.ref_prompts} prompts): max |diff| {err:.3g} = "
          f"{100 * err / scale:.2f}% of the largest logit {scale:.3g}", flush=True)

    if not args.skip_nnsight:
        n_layers, n_heads = shape["num_hidden_layers"], shape["num_attention_heads"]
        layers = sorted({min(layer, n_layers - 1) for layer in args.nnsight_layers})
        hf.to(torch.bfloat16)  # the kernels' twin was built from fp32 and is not used again
        nn_model = anchors.nnsight_model(hf)

        def theirs() -> torch.Tensor:
            return anchors.nnsight_head_out_sweep(nn_model, clean, corrupted, metric, n_heads,
                                                  layers_per_trace=1, layers=layers)

        measured = theirs()
        nn_seconds = median(time_calls(theirs, device, warmup=0, repeat=1))
        total = nn_seconds * n_layers / len(layers)
        ours_rows = bf16.float().cpu()[layers]
        result.update(nnsight_layers=layers, nnsight_measured_seconds=nn_seconds,
                      nnsight_seconds_all_layers=total, vs_nnsight=total / seconds,
                      nnsight_max_abs_diff=float((measured.float().cpu() - ours_rows).abs().max()))
        print(f"nnsight, one invoke per variant, bf16: {nn_seconds:.2f} s for layers {layers} -> "
              f"{total:.1f} s for all {n_layers}; ours {total / seconds:.1f}x faster; max |diff| "
              f"{result['nnsight_max_abs_diff']:.3g}", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
