"""CPU benchmark: every family's default claim vs its TransformerLens / SAELens equivalent.

Model: a GPT-2-small-shaped ``HookedTransformer`` with random weights
(``benchmarks.support.testing.randomise_weights``; 12 layers, d_model 768, 12 heads, d_mlp
3072, vocab 50257; ``--small`` for a tiny dry run). Prompts: random token ids, BOS (id 0)
first; the corrupted prompts are the clean ones with their last ``--n-tokens // 3`` tokens
redrawn; the answers are one random (correct, wrong) id pair per prompt. Two prompt sets:

* ``claim``: ``--n-prompts`` x ``--n-tokens`` (default 32 x 32) for the claims;
* ``sweep``: ``--sweep-prompts`` x ``--sweep-tokens`` (default 8 x 15) for the sweeps (TL's
  sweeps run one forward per cell: 144 for head_out, 12 x 15 for resid_pre).

Each case runs in its own subprocess after the same warm-up (a forward of 4 prompts, the
case once on a 2-layer toy model), so its peak memory is its own: the peak resident set
(``VmHWM``, reset through ``/proc/self/clear_refs`` after the model and the prompts are built)
minus the resident set at that point. Times are the best of ``--repeats`` runs (mi-assert's
head-measurement cache is cleared before each; no other family caches).

Cases (``family``: ``ours`` vs ``equivalent``, on the same prompts):

* ``forward`` / ``forward_sweep``: ``model(clean)`` on each prompt set, logits returned (the
  "× forward" reference of every row);
* patching claim: ``check_patching_recovery(model, clean, corrupted, PATCH_HEADS, metric)`` with
  its defaults (denoise, all positions, min_recovery 0.5) vs TL hooks doing the same: clean
  ``run_with_cache`` of the heads' ``hook_z``, a corrupted forward, a ``run_with_hooks`` patching
  the heads;
* ``patching_sweep(site="head_out")`` vs ``transformer_lens.patching
  .get_act_patch_attn_head_out_all_pos`` (after TL's ``run_with_cache(clean)``);
  ``patching_sweep(site="resid_pre", positions="each")`` vs ``get_act_patch_resid_pre``;
* direct logit attribution: ``check_direct_logit_attribution(model, clean, DLA_HEAD, correct,
  wrong, min_share=0.1)`` vs ``run_with_cache`` + ``cache.stack_head_results(apply_ln=True)`` +
  ``cache.decompose_resid(apply_ln=True)`` dotted with the answers' unembedding directions;
* logit lens: ``check_logit_lens(model, clean, correct)`` (defaults) vs ``run_with_cache`` +
  ``cache.accumulated_resid(apply_ln=True, pos_slice=-1)`` + ``model.unembed`` + ranks;
* SAE reconstruction: ``check_sae_reconstruction(sae, model, clean)`` (defaults: explained
  variance > 0.7, no CE) with a randomly initialised SAELens ``StandardSAE`` (d_sae ``--d-sae``,
  default 6144) at ``blocks.8.hook_resid_pre`` vs ``sae_lens.evals.run_evals`` (variance and
  sparsity metrics) on an in-memory dataset of the same tokens; and the CE variant
  (``max_ce_loss_increase=1.0``) vs ``run_evals`` with ``compute_ce_loss=True``;
* edges: ``edge_sweep(model, clean, corrupted, metric, method="eap")`` vs one plain forward and
  ``backward()`` of the summed logit difference (parameter gradients, as in training).

Run (prints a markdown table; ``--json`` also writes the numbers):

    OMP_NUM_THREADS=1 nice -n 10 python scripts/bench_families_cpu.py --threads 1
    python scripts/bench_families_cpu.py --small --inline   # dry run, seconds
    python scripts/bench_families_cpu.py --cases forward,lens_claim,lens_tl
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.support.process_memory import timed_repeats  # noqa: E402

GPT2_SMALL = dict(n_layers=12, d_model=768, n_heads=12, d_mlp=3072, d_vocab=50257, n_ctx=1024)
TINY = dict(n_layers=3, d_model=64, n_heads=4, d_mlp=256, d_vocab=500, n_ctx=64)
#: (family, ours, equivalent, prompt set); the "× forward" column divides by that set's forward
ROWS = (
    ("patching claim (3 heads)", "patching_claim", "patching_tl", "claim"),
    ("patching sweep, head_out", "sweep_head_out", "sweep_head_out_tl", "sweep"),
    ("patching sweep, resid_pre (each position)", "sweep_resid_pre", "sweep_resid_pre_tl",
     "sweep"),
    ("direct logit attribution", "dla_claim", "dla_tl", "claim"),
    ("logit lens", "lens_claim", "lens_tl", "claim"),
    ("SAE reconstruction (EV, no CE)", "sae_claim", "sae_run_evals", "claim"),
    ("SAE reconstruction with CE", "sae_claim_ce", "sae_run_evals_ce", "claim"),
    ("edges, EAP", "edge_eap", "forward_backward", "claim"),
)
FORWARDS = {"claim": "forward", "sweep": "forward_sweep"}
CASES = tuple(FORWARDS.values()) + tuple(c for row in ROWS for c in row[1:3])
SAE_HOOK_LAYER = {"gpt2": 8, "tiny": 2}


def _build(shape: dict[str, int], seed: int = 0) -> Any:
    from transformer_lens import HookedTransformer, HookedTransformerConfig

    from benchmarks.support.testing import randomise_weights

    cfg = HookedTransformerConfig(
        n_layers=shape["n_layers"], d_model=shape["d_model"], n_heads=shape["n_heads"],
        d_head=shape["d_model"] // shape["n_heads"], d_mlp=shape["d_mlp"],
        d_vocab=shape["d_vocab"], n_ctx=shape["n_ctx"], act_fn="gelu_new",
        normalization_type="LN", seed=seed)
    return randomise_weights(HookedTransformer(cfg), seed)


def _prompts(d_vocab: int, n: int, n_tok: int, seed: int) -> dict[str, Any]:
    import torch

    gen = torch.Generator().manual_seed(seed)
    clean = torch.randint(1, d_vocab, (n, n_tok), generator=gen)
    clean[:, 0] = 0  # BOS
    corrupted = clean.clone()
    k = max(1, n_tok // 3)
    corrupted[:, -k:] = torch.randint(1, d_vocab, (n, k), generator=gen)
    answers = torch.randint(1, d_vocab, (n, 2), generator=gen)
    answers[:, 1] = torch.where(answers[:, 1] == answers[:, 0], answers[:, 0] % (d_vocab - 1) + 1,
                                answers[:, 1])
    return {"clean": clean, "corrupted": corrupted, "correct": answers[:, 0],
            "wrong": answers[:, 1]}


def _random_sae(d_in: int, d_sae: int, hook: str, seed: int) -> Any:
    import torch
    from sae_lens.saes.sae import SAEMetadata
    from sae_lens.saes.standard_sae import StandardSAE, StandardSAEConfig

    torch.manual_seed(seed)
    meta = SAEMetadata(hook_name=hook, model_name="random-gpt2-shape", context_size=1,
                       prepend_bos=False)
    sae = StandardSAE(StandardSAEConfig(d_in=d_in, d_sae=d_sae, apply_b_dec_to_input=False,
                                        metadata=meta))
    with torch.no_grad():  # SAELens initialises W_enc = W_dec.T, biases 0: about half fire
        sae.b_enc.fill_(-0.5)
    return sae.eval()


def _saelens_run_evals(model: Any, sae: Any, tokens: Any, bos: int | None, ce: bool) -> Any:
    """SAELens's ``run_evals`` on an in-memory dataset holding exactly ``tokens``."""
    from datasets import Dataset
    from sae_lens.evals import EvalConfig, run_evals
    from sae_lens.training.activation_scaler import ActivationScaler
    from sae_lens.training.activations_store import ActivationsStore

    sae.cfg.metadata.context_size = tokens.shape[1]
    sae.cfg.metadata.prepend_bos = False  # the tokens already start with BOS
    store = ActivationsStore.from_sae(
        model, sae, Dataset.from_dict({"tokens": tokens.tolist()}), streaming=False,
        store_batch_size_prompts=tokens.shape[0], disable_concat_sequences=True,
        context_size=tokens.shape[1])
    cfg = EvalConfig(batch_size_prompts=tokens.shape[0], n_eval_reconstruction_batches=1,
                     n_eval_sparsity_variance_batches=1, compute_ce_loss=ce,
                     compute_variance_metrics=True, compute_sparsity_metrics=True)
    metrics, _ = run_evals(sae, store, model, ActivationScaler(), cfg,
                           exclude_special_tokens=[bos] if bos is not None else False)
    return metrics


def _works(model: Any, p: dict[str, Any], sp: dict[str, Any], sae: Any, heads: list[tuple[int, int]],
           dla_head: tuple[int, int]) -> dict[str, Callable[[], Any]]:
    """Each case's work on ``model``: ``p`` the claim prompts, ``sp`` the sweep prompts."""
    import torch
    from transformer_lens import patching as tlp

    import mi_assert
    from mi_assert import as_handle

    clean, corrupted, correct, wrong = p["clean"], p["corrupted"], p["correct"], p["wrong"]
    metric = mi_assert.logit_diff(correct, wrong)
    s_metric = mi_assert.logit_diff(sp["correct"], sp["wrong"])
    rows = torch.arange(len(clean))
    s_rows = torch.arange(len(sp["clean"]))
    bos = as_handle(model).bos_token_id

    def tl_metric(logits: Any) -> Any:  # TL's sweeps want a scalar: the mean logit difference
        at = logits[:, -1]
        return (at[s_rows, sp["correct"]] - at[s_rows, sp["wrong"]]).mean()

    def forward() -> None:
        with torch.no_grad():
            model(clean)

    def forward_sweep() -> None:
        with torch.no_grad():
            model(sp["clean"])

    def patching_claim() -> None:
        mi_assert.check_patching_recovery(model, clean, corrupted, heads, metric)

    def patching_tl() -> Any:
        names = {f"blocks.{lay}.attn.hook_z" for lay, _ in heads}
        with torch.no_grad():
            clean_logits, cache = model.run_with_cache(clean, names_filter=lambda n: n in names)
            corr_logits = model(corrupted)

            def patch(z: Any, hook: Any) -> Any:
                idx = [h for lay, h in heads if f"blocks.{lay}.attn.hook_z" == hook.name]
                z[:, :, idx] = cache[hook.name][:, :, idx]
                return z

            patched = model.run_with_hooks(corrupted, fwd_hooks=[(n, patch) for n in names])
        ld = [(lg[:, -1][rows, correct] - lg[:, -1][rows, wrong]).mean()
              for lg in (clean_logits, corr_logits, patched)]
        return (ld[2] - ld[1]) / (ld[0] - ld[1])

    def sweep_head_out() -> None:
        mi_assert.patching_sweep(model, sp["clean"], sp["corrupted"], s_metric, site="head_out")

    def sweep_resid_pre() -> None:
        mi_assert.patching_sweep(model, sp["clean"], sp["corrupted"], s_metric, site="resid_pre",
                                 positions="each")

    def _tl_sweep(fn: Callable[..., Any]) -> Any:
        with torch.no_grad():
            _, cache = model.run_with_cache(sp["clean"])
            return fn(model, sp["corrupted"], cache, tl_metric)

    def dla_claim() -> None:
        mi_assert.check_direct_logit_attribution(model, clean, dla_head, correct, wrong,
                                                 min_share=0.1)

    def dla_tl() -> Any:
        keep = ("hook_z", "hook_embed", "hook_pos_embed", "hook_attn_out", "hook_mlp_out",
                "hook_scale", "hook_resid_post")
        with torch.no_grad():
            _, cache = model.run_with_cache(clean, names_filter=lambda n: n.endswith(keep))
            direction = (model.W_U[:, correct] - model.W_U[:, wrong]).T  # [batch, d_model]
            per_head = cache.stack_head_results(layer=-1, pos_slice=-1, apply_ln=True)
            per_part = cache.decompose_resid(layer=-1, pos_slice=-1, apply_ln=True)
            return (per_head * direction).sum(-1), (per_part * direction).sum(-1)

    def lens_claim() -> None:
        mi_assert.check_logit_lens(model, clean, correct)

    def lens_tl() -> Any:
        keep = ("hook_resid_pre", "hook_resid_post", "ln_final.hook_scale")
        with torch.no_grad():
            _, cache = model.run_with_cache(clean, names_filter=lambda n: n.endswith(keep))
            stack = cache.accumulated_resid(pos_slice=-1, apply_ln=True)  # [layers+1, batch, d]
            lens = model.unembed(stack[:, :, None])[:, :, 0]  # [layers+1, batch, vocab]
            ans = lens[:, rows, correct]
            return ((lens >= ans[..., None]).sum(-1) - 1)[1:]  # resid_post of each layer

    def sae_claim() -> None:
        mi_assert.check_sae_reconstruction(sae, model, clean)

    def sae_claim_ce() -> None:
        mi_assert.check_sae_reconstruction(sae, model, clean, max_ce_loss_increase=1.0)

    def edge_eap() -> None:
        mi_assert.edge_sweep(model, clean, corrupted, metric, method="eap")

    def forward_backward() -> None:
        logits = model(clean)
        (logits[:, -1][rows, correct] - logits[:, -1][rows, wrong]).sum().backward()
        model.zero_grad(set_to_none=True)

    return {
        "forward": forward, "forward_sweep": forward_sweep,
        "patching_claim": patching_claim, "patching_tl": patching_tl,
        "sweep_head_out": sweep_head_out,
        "sweep_head_out_tl": lambda: _tl_sweep(tlp.get_act_patch_attn_head_out_all_pos),
        "sweep_resid_pre": sweep_resid_pre,
        "sweep_resid_pre_tl": lambda: _tl_sweep(tlp.get_act_patch_resid_pre),
        "dla_claim": dla_claim, "dla_tl": dla_tl, "lens_claim": lens_claim, "lens_tl": lens_tl,
        "sae_claim": sae_claim, "sae_claim_ce": sae_claim_ce,
        "sae_run_evals": lambda: _saelens_run_evals(model, sae, clean, bos, ce=False),
        "sae_run_evals_ce": lambda: _saelens_run_evals(model, sae, clean, bos, ce=True),
        "edge_eap": edge_eap, "forward_backward": forward_backward,
    }


def _settings(small: bool, d_model: int, n_layers: int, n_heads: int) -> dict[str, Any]:
    last, mid = n_layers - 1, n_layers // 2
    heads = [(mid - 1, 1 % n_heads), (mid, 2 % n_heads), (last, n_heads - 1)]
    return {"heads": heads, "dla_head": (last, n_heads - 1),
            "sae_layer": SAE_HOOK_LAYER["tiny" if small else "gpt2"]}


def _setup(shape: dict[str, int], args: argparse.Namespace) -> dict[str, Callable[[], Any]]:
    """The model, prompts and SAE on ``shape``; each case's work on them."""
    small = shape is TINY
    st = _settings(small, shape["d_model"], shape["n_layers"], shape["n_heads"])
    model = _build(shape)
    p = _prompts(shape["d_vocab"], args.n_prompts, args.n_tokens, seed=1)
    sp = _prompts(shape["d_vocab"], args.sweep_prompts, args.sweep_tokens, seed=2)
    sae_hook = f"blocks.{st['sae_layer']}.hook_resid_pre"
    sae = _random_sae(shape["d_model"], args.d_sae, sae_hook, seed=3)
    works = _works(model, p, sp, sae, st["heads"], st["dla_head"])
    import torch

    with torch.no_grad():  # warm-up: first-call dispatch and allocation, in no case's time
        model(p["clean"][:4])
    return works


def run_case(case: str, shape: dict[str, int], args: argparse.Namespace,
             works: dict[str, Callable[[], Any]] | None = None) -> dict[str, Any]:
    import torch

    from mi_assert.heads import measure

    if works is None:
        works = _setup(shape, args)
    work = works[case]
    # the family's code once on a 2-layer toy model: the imports and code a first claim loads
    # are paid once per process, not per claim
    toy_shape = dict(n_layers=2, d_model=16, n_heads=2, d_mlp=32, d_vocab=60, n_ctx=40)
    toy = _build(toy_shape)
    tp = _prompts(60, 8, 8, seed=4)
    toy_sae = _random_sae(16, 32, "blocks.1.hook_resid_pre", seed=5)
    _works(toy, tp, tp, toy_sae, [(0, 0), (1, 1)], (1, 1))[case]()
    del toy, toy_sae
    times, cpu_times, peak_kib = timed_repeats(work, args.repeats, lambda _: measure.clear_cache())
    return {"case": case, "seconds": min(times), "all_seconds": times,
            "cpu_seconds": min(cpu_times), "peak_delta_mib": peak_kib / 1024,
            "threads": torch.get_num_threads()}


def _table(results: dict[str, dict[str, Any]], args: argparse.Namespace) -> str:
    shape = "tiny shape" if args.small else "GPT-2-small shape"
    out = [f"{shape}, claims on {args.n_prompts} x {args.n_tokens} tokens, sweeps on "
           f"{args.sweep_prompts} x {args.sweep_tokens}, SAE d_sae {args.d_sae}, "
           f"{args.threads} thread(s), best of {args.repeats}", "",
           "| family | case | wall s | × equivalent | × forward (logits) | peak RSS delta MiB |",
           "|---|---|---|---|---|---|"]
    for pset, case in FORWARDS.items():
        if case in results:
            r = results[case]
            out.append(f"| plain TL forward ({pset} prompts) | `{case}` | {r['seconds']:.3f} | "
                       f"| 1.00 | {r['peak_delta_mib']:.0f} |")
    for family, ours, equiv, pset in ROWS:
        ref = results.get(FORWARDS[pset], {}).get("seconds")
        eq = results.get(equiv, {}).get("seconds")
        for case, role in ((ours, "ours"), (equiv, "equivalent")):
            if case not in results:
                continue
            r = results[case]
            x_eq = "1.00" if role == "equivalent" else (f"**{r['seconds'] / eq:.2f}**" if eq else "")
            x_fw = f"{r['seconds'] / ref:.2f}" if ref else ""
            out.append(f"| {family}{'' if role == 'ours' else ' (equivalent)'} | `{case}` "
                       f"| {r['seconds']:.3f} | {x_eq} | {x_fw} | {r['peak_delta_mib']:.0f} |")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--repeats", type=int, default=2, help="runs per case (best counts)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--n-prompts", type=int, default=None, help="claim prompts (32; small 8)")
    parser.add_argument("--n-tokens", type=int, default=None, help="claim tokens (32; small 10)")
    parser.add_argument("--sweep-prompts", type=int, default=8)
    parser.add_argument("--sweep-tokens", type=int, default=None, help="(15; small 6)")
    parser.add_argument("--d-sae", type=int, default=None, help="SAE width (6144; small 128)")
    parser.add_argument("--small", action="store_true", help="tiny model (a dry run)")
    parser.add_argument("--inline", action="store_true",
                        help="all cases in this process (a quick check of the script; the peak "
                             "memory column is then not per case)")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)  # a case, in this process
    args = parser.parse_args()
    shape = TINY if args.small else GPT2_SMALL
    for name, full, small in (("n_prompts", 32, 8), ("n_tokens", 32, 10), ("sweep_tokens", 15, 6),
                              ("d_sae", 6144, 128)):
        if getattr(args, name) is None:
            setattr(args, name, small if args.small else full)
    if args.one:
        import torch

        torch.set_num_threads(args.threads)
        os.environ.setdefault("TQDM_DISABLE", "1")
        print(json.dumps(run_case(args.one, shape, args)))
        return
    cases = args.cases.split(",")
    for case in cases:
        if case not in CASES:
            raise SystemExit(f"unknown case {case!r}; cases: {', '.join(CASES)}")
    results: dict[str, dict[str, Any]] = {}
    if args.inline:  # every case in this process: quick, but the peak memory is not per case
        import torch

        torch.set_num_threads(args.threads)
        works = _setup(shape, args)
        for case in cases:
            results[case] = run_case(case, shape, args, works)
        print(_table(results, args))
        return
    for case in cases:
        cmd = [sys.executable, str(Path(__file__).resolve()), "--one", case,
               "--repeats", str(args.repeats), "--threads", str(args.threads),
               "--n-prompts", str(args.n_prompts), "--n-tokens", str(args.n_tokens),
               "--sweep-prompts", str(args.sweep_prompts), "--sweep-tokens", str(args.sweep_tokens),
               "--d-sae", str(args.d_sae)] + (["--small"] if args.small else [])
        env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "TQDM_DISABLE": "1",
               "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        if out.returncode:
            raise SystemExit(f"case {case} failed:\n{out.stderr[-4000:]}")
        result = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"# {case}: {result['seconds']:.3f} s, peak +{result['peak_delta_mib']:.0f} MiB",
              file=sys.stderr, flush=True)
        results[case] = result
    print()
    print(_table(results, args))
    if args.json:
        args.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()},
                                         "results": results}, indent=2))


if __name__ == "__main__":
    main()
