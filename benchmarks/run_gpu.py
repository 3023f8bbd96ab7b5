"""One command that checks and times every fast kernel against its anchors, prints a table and
writes JSON. On the GPU machine (see docs/benchmarks.md for the wheel set it needs):

    PYTHONPATH=. python benchmarks/run_gpu.py --json $OUT/results.json

``--small`` runs the same pipeline on a tiny model (a CPU dry run of the script itself).
Everything is fp32 unless a row says tf32/bf16; TF32 is off for every fp32 row.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from collections.abc import Callable
from typing import Any

os.environ.setdefault("TQDM_DISABLE", "1")  # TL's patching loops print progress bars

import torch  # noqa: E402

from benchmarks.support import anchors
from benchmarks.support.floor import head_sweep_floor_flops, median, synchronize, time_calls  # noqa: E402
from benchmarks.support.testing import gpt2_twins, random_pair  # noqa: E402
from mi_assert.backends.transformer_lens import TransformerLensHandle  # noqa: E402
from mi_assert.kernels import attribution_head_out, fast_patching_sweep  # noqa: E402
from mi_assert.kernels.functional import full_logits, functional_model  # noqa: E402
from mi_assert.kernels.sae import sae_forward, sae_forward_unfused  # noqa: E402

Row = dict[str, Any]


def device_info(device: torch.device) -> dict[str, Any]:
    info: dict[str, Any] = {"torch": torch.__version__, "python": platform.python_version(),
                            "device": str(device)}
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info.update(gpu=props.name, sms=props.multi_processor_count,
                    memory_gib=round(props.total_memory / 2**30, 1), cuda=torch.version.cuda)
        try:
            info["driver"] = subprocess.run(
                ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                capture_output=True, text=True, timeout=20).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            info["driver"] = "unknown"
    else:
        info.update(gpu="none (CPU)", cpu=platform.processor() or platform.machine())
    for name in ("transformer_lens", "nnsight", "transformers"):
        try:
            from importlib.metadata import version

            info[name] = version(name.replace("_", "-"))
        except Exception:  # noqa: BLE001 - report what is there
            info[name] = "absent"
    return info


def matmul_rate(device: torch.device, dtype: torch.dtype, n: int, tf32: bool = False) -> float:
    """Measured FLOP/s of an n^3 matrix product on random data (median of 5)."""
    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)
    previous = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("high" if tf32 else "highest")
    try:
        t = median(time_calls(lambda: a @ b, device, warmup=2, repeat=5))
    finally:
        torch.set_float32_matmul_precision(previous)
    return 2 * n**3 / t


def copy_rate(device: torch.device, n_bytes: int) -> float:
    src = torch.randn(n_bytes // 4, device=device)
    dst = torch.empty_like(src)
    t = median(time_calls(lambda: dst.copy_(src), device, warmup=2, repeat=5))
    return 2 * n_bytes / t


def peak_bytes(fn: Callable[[], Any], device: torch.device) -> int | None:
    """Peak allocated bytes above what was allocated before the call."""
    if device.type != "cuda":
        return None
    synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    base = torch.cuda.memory_allocated(device)
    fn()
    synchronize(device)
    return int(torch.cuda.max_memory_allocated(device) - base)


def max_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.double().cpu() - b.double().cpu()).abs().max())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--small", action="store_true", help="tiny model: dry run of the script")
    parser.add_argument("--json", default=None, help="write all numbers here")
    parser.add_argument("--skip-nnsight", action="store_true")
    parser.add_argument("--repeat", type=int, default=10, help="timed calls of our kernels")
    args = parser.parse_args()

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.set_float32_matmul_precision("highest")
    info = device_info(device)
    print("env:", json.dumps(info), flush=True)

    big = 8192 if device.type == "cuda" else 1024
    ceilings = {
        "fp32_flops": matmul_rate(device, torch.float32, big),
        "tf32_flops": matmul_rate(device, torch.float32, big, tf32=True),
        "bf16_flops": matmul_rate(device, torch.bfloat16, big),
        "copy_bytes_per_s": copy_rate(device, 2**30 if device.type == "cuda" else 2**26),
    }
    print("ceilings:", {k: f"{v / 1e12:.1f}T" for k, v in ceilings.items()}, flush=True)

    if args.small:
        shape = dict(n_layers=3, d_model=64, n_heads=4, d_vocab=257, n_ctx=64)
        cases = [(4, 9), (8, 12)]
    else:
        shape = dict(n_layers=12, d_model=768, n_heads=12, d_vocab=50257, n_ctx=1024)
        cases = [(8, 15), (64, 32)]
    hf, tl = gpt2_twins(device=str(device), **shape)
    handle = TransformerLensHandle(tl)
    nn_model = None if args.skip_nnsight else anchors.nnsight_model(hf)
    cfg = tl.cfg
    rows: list[Row] = []

    def floor_s(batch: int, n_pos: int) -> float:
        flops = head_sweep_floor_flops(cfg.n_layers, cfg.d_model, cfg.n_heads, cfg.d_head,
                                       cfg.d_mlp, cfg.d_vocab, batch, n_pos)
        return flops / ceilings["fp32_flops"]

    with torch.no_grad():
        probe = random_pair(cfg.d_vocab, 2, 8, seed=99, device=str(device))[0]
        twin_err = max_err(hf(probe).logits, tl(probe))
    print(f"HF/TL twin max |logit diff| = {twin_err:.2e}", flush=True)

    # ----- all-heads output sweep ---------------------------------------------------------
    def head_case(batch: int, n_pos: int) -> None:
        clean, corrupted, metric = random_pair(cfg.d_vocab, batch, n_pos, seed=batch,
                                               device=str(device))
        label = f"{batch}x{n_pos}"
        with torch.no_grad():
            tl_times = time_calls(lambda: anchors.tl_head_out_sweep(tl, clean, corrupted, metric),
                                  device, warmup=0, repeat=1)
            ref = anchors.tl_head_out_sweep(tl, clean, corrupted, metric)
        tl_s = median(tl_times)
        nn_s = None
        nn_err = None
        if nn_model is not None:
            per_trace = None if batch * n_pos <= 256 else 1
            nn_fn = lambda: anchors.nnsight_head_out_sweep(  # noqa: E731
                nn_model, clean, corrupted, metric, cfg.n_heads, layers_per_trace=per_trace)
            nn_out = nn_fn()
            nn_err = max_err(nn_out, ref)
            nn_s = median(time_calls(nn_fn, device, warmup=0, repeat=2 if batch > 8 else 3))
        for precision in ("fp32", "tf32", "bf16"):
            fn = lambda p=precision: fast_patching_sweep(  # noqa: E731
                handle, clean, corrupted, metric, "head_out", precision=p)
            out = fn()
            times = time_calls(fn, device, warmup=1, repeat=args.repeat if batch <= 8 else 5)
            t = median(times)
            rows.append({
                "work": f"head_out sweep {label}", "impl": f"ours {precision}", "time_s": t,
                "times_s": times, "tl_s": tl_s, "nnsight_s": nn_s, "x_vs_tl": tl_s / t,
                "x_vs_nnsight": None if nn_s is None else nn_s / t, "floor_s": floor_s(batch, n_pos),
                "x_floor": t / floor_s(batch, n_pos), "peak_bytes": peak_bytes(fn, device),
                "max_abs_err_vs_tl": max_err(out, ref), "ref_scale": float(ref.abs().max()),
                "nnsight_err_vs_tl": nn_err,
            })
            print(rows[-1]["work"], rows[-1]["impl"], f"{t:.4f}s", flush=True)
        rows.append({"work": f"head_out sweep {label}", "impl": "TL loop", "time_s": tl_s,
                     "x_floor": tl_s / floor_s(batch, n_pos), "floor_s": floor_s(batch, n_pos),
                     "peak_bytes": None})
        if nn_s is not None:
            rows.append({"work": f"head_out sweep {label}", "impl": "nnsight invokes",
                         "time_s": nn_s, "x_floor": nn_s / floor_s(batch, n_pos),
                         "floor_s": floor_s(batch, n_pos), "max_abs_err_vs_tl": nn_err})
        # chunked: force 4 chunks, same numbers
        n_var = cfg.n_layers * cfg.n_heads
        fn = lambda: fast_patching_sweep(handle, clean, corrupted, metric, "head_out",  # noqa: E731
                                         max_variants_per_chunk=-(-n_var // 4))
        out = fn()
        t = median(time_calls(fn, device, warmup=1, repeat=3))
        rows.append({"work": f"head_out sweep {label}", "impl": "ours fp32, 4 chunks",
                     "time_s": t, "x_vs_tl": tl_s / t, "x_floor": t / floor_s(batch, n_pos),
                     "floor_s": floor_s(batch, n_pos), "peak_bytes": peak_bytes(fn, device),
                     "max_abs_err_vs_tl": max_err(out, ref)})


    for batch, n_pos in cases:
        head_case(batch, n_pos)
    # ----- residual stream sweep ----------------------------------------------------------
    batch, n_pos = cases[0]
    clean, corrupted, metric = random_pair(cfg.d_vocab, batch, n_pos, seed=batch, device=str(device))
    with torch.no_grad():
        tl_s = median(time_calls(lambda: anchors.tl_resid_pre_sweep(tl, clean, corrupted, metric),
                                 device, warmup=0, repeat=1))
        ref = anchors.tl_resid_pre_sweep(tl, clean, corrupted, metric)
    fn = lambda: fast_patching_sweep(handle, clean, corrupted, metric, "resid_pre")  # noqa: E731
    out = fn()
    t = median(time_calls(fn, device, warmup=1, repeat=args.repeat))
    rows.append({"work": f"resid_pre sweep {batch}x{n_pos}", "impl": "ours fp32", "time_s": t,
                 "tl_s": tl_s, "x_vs_tl": tl_s / t, "peak_bytes": peak_bytes(fn, device),
                 "max_abs_err_vs_tl": max_err(out, ref), "ref_scale": float(ref.abs().max())})

    # ----- attribution --------------------------------------------------------------------
    fwd_tl = median(time_calls(lambda: tl(corrupted), device, warmup=2, repeat=args.repeat))
    fm = functional_model(tl)
    with torch.no_grad():
        fwd_ours = median(time_calls(lambda: full_logits(fm, corrupted), device, warmup=2,
                                     repeat=args.repeat))
    fwd_hf = median(time_calls(lambda: hf(corrupted), device, warmup=2, repeat=args.repeat))
    ref = anchors.tl_attribution_head_out(tl, clean, corrupted, metric)
    ref_s = median(time_calls(lambda: anchors.tl_attribution_head_out(tl, clean, corrupted, metric),
                              device, warmup=1, repeat=3))
    fn = lambda: attribution_head_out(handle, clean, corrupted, metric)  # noqa: E731
    out = fn()
    t = median(time_calls(fn, device, warmup=2, repeat=args.repeat))
    rows.append({"work": f"attribution all heads {batch}x{n_pos}", "impl": "ours fp32",
                 "time_s": t, "tl_s": ref_s, "x_vs_tl": ref_s / t,
                 "forward_equivalents_tl": t / fwd_tl, "forward_equivalents_ours": t / fwd_ours,
                 "forward_tl_s": fwd_tl, "forward_ours_s": fwd_ours, "forward_hf_s": fwd_hf,
                 "peak_bytes": peak_bytes(fn, device), "max_abs_err_vs_tl": max_err(out, ref),
                 "ref_scale": float(ref.abs().max())})

    # ----- SAE encode/decode --------------------------------------------------------------
    d_in, d_sae, n_act = (768, 24576, 16384) if not args.small else (64, 2048, 1024)
    gen = torch.Generator(device="cpu").manual_seed(0)
    W_enc = (torch.randn(d_in, d_sae, generator=gen) / d_in**0.5).to(device)
    W_dec = (torch.randn(d_sae, d_in, generator=gen) / d_sae**0.5).to(device)
    b_enc = (0.1 * torch.randn(d_sae, generator=gen)).to(device)
    b_dec = (0.1 * torch.randn(d_in, generator=gen)).to(device)
    x = torch.randn(n_act, d_in, generator=gen).to(device)
    sae_flops = 2 * 2 * n_act * d_in * d_sae
    with torch.no_grad():
        recon_ref = sae_forward_unfused(x.double(), W_enc.double(), b_enc.double(),
                                        W_dec.double(), b_dec.double())[1]
        for precision, dtype in (("fp32", torch.float32), ("tf32", torch.float32),
                                 ("bf16", torch.bfloat16)):
            args_ = [t_.to(dtype) for t_ in (x, W_enc, b_enc, W_dec, b_dec)]
            ceiling = ceilings[f"{precision}_flops"]
            torch.set_float32_matmul_precision("high" if precision == "tf32" else "highest")
            for impl, f in (("ours fused", sae_forward), ("SAELens ops", sae_forward_unfused)):
                fn = lambda f=f, a=args_: f(*a)  # noqa: E731
                recon = fn()[1]
                t = median(time_calls(fn, device, warmup=2, repeat=args.repeat))
                rel = float((recon.double() - recon_ref).norm() / recon_ref.norm())
                rows.append({"work": f"SAE {d_in}->{d_sae} enc+dec, {n_act} rows",
                             "impl": f"{impl} {precision}", "time_s": t,
                             "tflops": sae_flops / t / 1e12,
                             "fraction_of_ceiling": sae_flops / t / ceiling,
                             "peak_bytes": peak_bytes(fn, device), "rel_err_vs_fp64": rel})
            torch.set_float32_matmul_precision("highest")

    print_table(info, ceilings, rows)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"env": info, "ceilings": ceilings, "twin_err": twin_err, "rows": rows},
                      fh, indent=1, default=str)


def fmt(v: Any, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def print_table(info: dict[str, Any], ceilings: dict[str, float], rows: list[Row]) -> None:
    print()
    print(f"device: {info.get('gpu')} driver {info.get('driver', '-')}, torch {info['torch']}, "
          f"TL {info.get('transformer_lens')}, nnsight {info.get('nnsight')}")
    print("ceilings: " + ", ".join(f"{k} {v / 1e12:.1f}T" for k, v in ceilings.items()))
    header = (f"{'work':38} {'impl':22} {'time s':>9} {'xTL':>7} {'xNNs':>6} {'/floor':>6} "
              f"{'peak MiB':>9} {'err vs TL':>9} {'other':>14}")
    print(header)
    print("-" * len(header))
    for r in rows:
        peak = None if r.get("peak_bytes") is None else r["peak_bytes"] / 2**20
        other = ""
        if "fraction_of_ceiling" in r:
            other = f"{100 * r['fraction_of_ceiling']:.0f}% ceil e{r['rel_err_vs_fp64']:.0e}"
        elif "forward_equivalents_tl" in r:
            other = f"{r['forward_equivalents_tl']:.2f} TL-fwd"
        print(f"{r['work'][:38]:38} {r['impl'][:22]:22} {r['time_s']:9.4f} "
              f"{fmt(r.get('x_vs_tl'), '7.1f')} {fmt(r.get('x_vs_nnsight'), '6.2f')} "
              f"{fmt(r.get('x_floor'), '6.2f')} {fmt(peak, '9.0f')} "
              f"{fmt(r.get('max_abs_err_vs_tl'), '9.1e')} {other:>14}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
