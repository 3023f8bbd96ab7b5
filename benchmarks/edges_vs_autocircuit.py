"""Exact edge patching: mi-assert's ``edge_sweep`` against auto-circuit's edge patching, same
process, same weights, same edges; prints the times, the ratio and the largest difference.

auto-circuit 1.0.1 wraps the model in place and pins its own dependencies (tracr, jax, plotly,
kaleido), so it runs from a separate benchmark venv (``bash scripts/setup_autocircuit_venv.sh``):

    OMP_NUM_THREADS=1 PYTHONPATH=. .venv-autocircuit/bin/python benchmarks/edges_vs_autocircuit.py
    PYTHONPATH=. python benchmarks/edges_vs_autocircuit.py --device cuda --shape gpt2-small

auto-circuit's equivalent of one exact edge score is what its ACDC loop runs per edge: the
edge's patch mask set to 1 with the clean run's source outputs as the patch, every other mask
0, and one forward from the receiver's layer on the corrupted residual (``start_at_layer``).
Its graph is the same one (``separate_qkv=True``: a head's q, k and v inputs are separate
receivers; ``Resid Start`` is ``embed``, ``Resid End`` the logits).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import time
from collections.abc import Callable
from typing import Any

os.environ.setdefault("TQDM_DISABLE", "1")

import torch  # noqa: E402

import mi_assert  # noqa: E402
from mi_assert.edges import edge_sweep  # noqa: E402

#: largest |edge_sweep - auto-circuit| accepted before anything is timed (fp32; on GPU TF32 is
#: off for both, as torch's default)
TOLERANCE = 1e-4

SHAPES: dict[str, dict[str, int]] = {
    # the CPU benchmark model of docs/edges.md (1,519 edges)
    "small": dict(n_layers=4, d_model=128, n_heads=8, d_vocab=1000, batch=8, seq=16),
    # GPT-2 small (32,656 edges)
    "gpt2-small": dict(n_layers=12, d_model=768, n_heads=12, d_vocab=50257, batch=8, seq=16),
}


def build(shape: dict[str, int], device: torch.device) -> tuple[Any, Any, Any, Any]:
    """(model, clean, corrupted, metric): random GPT-2-shaped weights, one changed position."""
    from transformer_lens import HookedTransformer, HookedTransformerConfig

    d = shape["d_model"]
    cfg = HookedTransformerConfig(n_layers=shape["n_layers"], d_model=d, d_head=d // shape["n_heads"],
                                  n_heads=shape["n_heads"], d_mlp=4 * d, d_vocab=shape["d_vocab"],
                                  n_ctx=64, act_fn="gelu_new", normalization_type="LN", seed=0,
                                  device=str(device))
    model = HookedTransformer(cfg).eval()
    gen = torch.Generator().manual_seed(0)
    batch, seq, vocab = shape["batch"], shape["seq"], shape["d_vocab"]
    clean = torch.randint(0, vocab, (batch, seq), generator=gen)
    corrupted = clean.clone()
    corrupted[:, seq // 2] = torch.randint(0, vocab, (batch,), generator=gen)
    metric = mi_assert.logit_diff(torch.randint(0, vocab, (batch,), generator=gen),
                                  torch.randint(0, vocab, (batch,), generator=gen))
    return model, clean.to(device), corrupted.to(device), metric


def ours_name(ac_name: str) -> str:
    """auto-circuit's edge name (``A0.1->A1.2.Q``, ``Resid Start->MLP 0``) as mi-assert's."""

    def node(name: str) -> str:
        if name == "Resid Start":
            return "embed"
        if name == "Resid End":
            return "logits"
        if name.startswith("MLP "):
            return f"mlp{int(name[4:])}"
        parts = name[1:].split(".")
        head = f"L{int(parts[0])}H{int(parts[1])}"
        return head if len(parts) == 2 else f"{head}.{parts[2].lower()}"

    src, dest = ac_name.split("->")
    return f"{node(src)}->{node(dest)}"


def _alias_renamed_tl_module() -> None:
    """auto-circuit 1.0.1 imports ``HookedTransformerKeyValueCache`` from ``transformer_lens``
    and ``transformer_lens.past_key_value_caching``, which TransformerLens 3 renamed
    (``transformer_lens.cache.key_value_cache.TransformerLensKeyValueCache``); it only names the
    cache type, and this benchmark passes no KV cache, so the old names are aliased."""
    import sys
    import types

    import transformer_lens

    if hasattr(transformer_lens, "HookedTransformerKeyValueCache"):
        return  # TransformerLens 2: nothing to do
    from transformer_lens.cache.key_value_cache import TransformerLensKeyValueCache

    alias = types.ModuleType("transformer_lens.past_key_value_caching")
    alias.HookedTransformerKeyValueCache = TransformerLensKeyValueCache  # type: ignore[attr-defined]
    sys.modules[alias.__name__] = alias
    transformer_lens.HookedTransformerKeyValueCache = TransformerLensKeyValueCache  # type: ignore[attr-defined]


def autocircuit_exact(model: Any, clean: Any, corrupted: Any, metric: Any,
                      device: torch.device) -> tuple[dict[str, torch.Tensor], Callable[[], Any]]:
    """Per-edge scores ``{mi-assert edge name: [batch]}`` and the timed run itself."""
    _alias_renamed_tl_module()
    from auto_circuit.types import AblationType
    from auto_circuit.utils.ablation_activations import src_ablations
    from auto_circuit.utils.graph_utils import patch_mode, patchable_model, set_all_masks

    for flag in ("use_attn_result", "use_split_qkv_input", "use_hook_mlp_in"):
        setattr(model.cfg, flag, True)
    for p in model.parameters():
        p.requires_grad_(False)
    pm = patchable_model(model, factorized=True, slice_output="last_seq", separate_qkv=True,
                         device=device)
    # latest receivers first, as auto-circuit's ACDC loop orders them: a forward from layer l
    # overwrites the recorded outputs of senders from l on, which later edges would then read
    edges = sorted(pm.edges, key=lambda e: e.dest.layer, reverse=True)
    scores: dict[str, torch.Tensor] = {}

    def run() -> None:
        clean_src = src_ablations(pm, clean, AblationType.RESAMPLE)  # the clean sender outputs
        corrupted_src = src_ablations(pm, corrupted, AblationType.RESAMPLE)
        with torch.inference_mode():
            base = metric.at_position(pm(corrupted)[pm.out_slice])
            _, cache = pm.run_with_cache(corrupted)
            resids = [cache[f"blocks.{i}.hook_resid_pre"].clone() for i in range(model.cfg.n_layers)]
            del cache
        set_all_masks(pm, 0.0)
        with patch_mode(pm, clean_src, curr_src_outs=corrupted_src):
            for edge in edges:
                mask = edge.patch_mask(pm)
                mask.data[edge.patch_idx] = 1.0
                start = int(edge.dest.module_name.split(".")[1])
                with torch.inference_mode():
                    out = pm(resids[start], start_at_layer=start)[pm.out_slice]
                scores[ours_name(edge.name)] = (metric.at_position(out) - base).float().cpu()
                mask.data[edge.patch_idx] = 0.0

    return scores, run


def _seconds(fn: Callable[[], Any], device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--shape", choices=sorted(SHAPES), default="small")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each (best counts)")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    device = torch.device(args.device)
    model, clean, corrupted, metric = build(SHAPES[args.shape], device)
    ours_model = copy.deepcopy(model)  # auto-circuit rewires its copy in place
    ac_scores, ac_run = autocircuit_exact(model, clean, corrupted, metric, device)
    ac_run()  # warm-up, and the scores
    result: dict[str, Any] = {}
    sweep = edge_sweep(ours_model, clean, corrupted, metric)
    assert {e.name for e in sweep.edges} == set(ac_scores), "the two graphs differ"
    ref = torch.stack([ac_scores[e.name] for e in sweep.edges])
    result["max_abs_err"] = float((sweep.per_prompt - ref).abs().max())
    result["largest_score"] = float(ref.abs().max())
    if result["max_abs_err"] > TOLERANCE:  # timing two different computations means nothing
        raise SystemExit(f"edge_sweep and auto-circuit disagree by {result['max_abs_err']:.3g} "
                         f"(tolerance {TOLERANCE})")
    result["edges"] = len(sweep.edges)
    timings = {"auto-circuit": float("inf"), "kernel": float("inf"), "hooks": float("inf")}
    for _ in range(args.repeats):  # interleaved rounds: a slow spell hits all three
        timings["auto-circuit"] = min(timings["auto-circuit"], _seconds(ac_run, device))
        for engine in ("kernel", "hooks"):
            seconds = _seconds(lambda engine=engine: edge_sweep(ours_model, clean, corrupted,
                                                                metric, engine=engine), device)
            timings[engine] = min(timings[engine], seconds)
    result.update({f"{k}_seconds": v for k, v in timings.items()})
    result["speedup_kernel"] = timings["auto-circuit"] / timings["kernel"]
    result["speedup_hooks"] = timings["auto-circuit"] / timings["hooks"]
    result.update(shape=args.shape, device=str(device), threads=torch.get_num_threads())
    print(f"{args.shape} on {device} ({torch.get_num_threads()} threads), {result['edges']} edges, "
          f"batch {clean.shape[0]}x{clean.shape[1]}: auto-circuit {timings['auto-circuit']:.2f} s; "
          f"edge_sweep kernel {timings['kernel']:.2f} s = {result['speedup_kernel']:.1f}x, "
          f"hooks {timings['hooks']:.2f} s = {result['speedup_hooks']:.1f}x; max abs diff "
          f"{result['max_abs_err']:.1e} (largest score {result['largest_score']:.3g})")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
