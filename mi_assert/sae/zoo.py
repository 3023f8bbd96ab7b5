"""The SAE zoo: small SAEs trained offline with SAELens's own trainer, and ``load_sae``.

Each zoo SAE has a recipe (:data:`RECIPES`): what it reads (synthetic superposition data with a
known dictionary, or a zoo model's activations at a hook), its architecture and training
settings. ``python -m mi_assert.sae train NAME`` (or ``all``) trains it with
``sae_lens.training.sae_trainer.SAETrainer`` on an in-memory activation iterator, saves it with
``SAE.save_model`` under ``mi_assert/zoo/sae_checkpoints/NAME/`` and records its metrics in
``manifest.json`` next to it. Loading goes through ``SAE.load_from_disk`` (offline).
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from mi_assert.errors import MiAssertInputError, ModelUnavailableError, suggest
from mi_assert.sae.synthetic import SuperpositionConfig, SyntheticFeatures, make_superposition

SAE_ROOT = Path(__file__).resolve().parent.parent / "zoo" / "sae_checkpoints"
MANIFEST_PATH = SAE_ROOT / "manifest.json"


@dataclass(frozen=True)
class SaeRecipe:
    """How one zoo SAE is trained. ``source`` is ``"synthetic"`` or a zoo model spec."""

    name: str
    source: str
    hook: str
    architecture: str  # "topk" | "standard"
    d_sae: int
    description: str
    k: int = 8  # top-k
    l1_coefficient: float = 1.0  # standard
    lr: float = 1e-3
    batch_size: int = 1024
    steps: int = 1500
    seed: int = 0
    synthetic: SuperpositionConfig | None = None
    #: prompt generation for model sources: repeated random tokens (BOS + r + r)
    prompt_kw: dict[str, Any] = field(default_factory=lambda: {"n_prompts": 64, "repeat_len": 20})


RECIPES: dict[str, SaeRecipe] = {
    r.name: r
    for r in (
        SaeRecipe(
            name="synthetic-topk",
            source="synthetic",
            hook="synthetic",
            architecture="topk",
            d_sae=512,
            k=5,
            description="TopK SAE (k=5, 512 latents) on 256-d superposition data with 512 known "
            "unit-norm features, about 5 active per sample (seed 0)",
            synthetic=SuperpositionConfig(),
        ),
        SaeRecipe(
            name="planted-induction-l0-resid",
            source="planted-induction@s0",
            hook="blocks.0.hook_resid_post",
            architecture="topk",
            d_sae=512,
            k=8,
            steps=600,
            description="TopK SAE (k=8, 512 latents) on planted-induction@s0's layer-0 residual "
            "stream (BOS + 20 random tokens repeated twice; BOS positions left out)",
        ),
        SaeRecipe(
            name="attn-only-2l-l0-resid",
            source="attn-only-2l-induction@s0",
            hook="blocks.0.hook_resid_post",
            architecture="topk",
            d_sae=256,
            k=8,
            steps=600,
            description="TopK SAE (k=8, 256 latents) on the trained attn-only-2l-induction@s0 "
            "layer-0 residual stream (repeated random tokens)",
        ),
        SaeRecipe(
            name="kjv-gpt2-4l-l2-resid",
            source="kjv-gpt2-4l",
            hook="blocks.2.hook_resid_post",
            architecture="topk",
            d_sae=1024,
            k=16,
            steps=1500,
            batch_size=2048,
            description="TopK SAE (k=16, 1024 latents) on kjv-gpt2-4l's layer-2 residual stream "
            "(windows of 128 tokens of KJV training chapters; BOS positions left out)",
            prompt_kw={"corpus": "kjv", "n_prompts": 32, "n_tokens": 128},
        ),
    )
}


def available() -> list[str]:
    """Names of the zoo SAEs (trained or not)."""
    return sorted(RECIPES)


def manifest() -> dict[str, Any]:
    """Metrics of the committed zoo SAEs (empty when none is trained)."""
    if not MANIFEST_PATH.exists():
        return {}
    return json.loads(MANIFEST_PATH.read_text())


def synthetic_data(name: str) -> SyntheticFeatures:
    """The exact superposition data set (true dictionary) a synthetic zoo SAE was trained on."""
    recipe = _recipe(name)
    if recipe.synthetic is None:
        raise MiAssertInputError(f"zoo SAE {name!r} reads {recipe.source!r}, not synthetic data")
    return make_superposition(recipe.synthetic, seed=recipe.seed)


def _recipe(name: str) -> SaeRecipe:
    if name not in RECIPES:
        raise MiAssertInputError(
            f"unknown zoo SAE {name!r}.{suggest(name, available())} Zoo SAEs: {', '.join(available())}"
        )
    return RECIPES[name]


# ----- loading ---------------------------------------------------------------------------------
def load_sae(name_or_path: str | Path, device: str | torch.device = "cpu",
             sae_id: str | None = None, dtype: str | None = None) -> Any:
    """Load an SAE: a zoo SAE name, a local ``save_model`` folder, or a SAELens hub release.

    * zoo name (:func:`available`): loaded from ``mi_assert/zoo/sae_checkpoints/NAME``.
    * local folder with ``cfg.json`` + ``sae_weights.safetensors``: ``SAE.load_from_disk``.
    * hub release: ``load_sae("gpt2-small-res-jb", sae_id="blocks.8.hook_resid_pre")`` or the
      single string ``"gpt2-small-res-jb/blocks.8.hook_resid_pre"`` → ``SAE.from_pretrained``.
      Offline and not cached → :class:`ModelUnavailableError` with the reason.
    """
    from sae_lens import SAE

    dev = str(device)
    spec = str(name_or_path)
    _check_dtype(dtype)
    if spec in RECIPES:
        folder = SAE_ROOT / spec
        if not (folder / "cfg.json").exists():
            raise ModelUnavailableError(
                f"zoo SAE {spec!r} is not trained: {folder} is missing. Train it with "
                f"`python -m mi_assert.sae train {spec}`"
            )
        sae = SAE.load_from_disk(folder, device=dev, dtype=dtype)
        sae.cfg.metadata.mi_assert_source = f"zoo:{spec}"
        return sae
    path = Path(spec).expanduser()
    if path.exists():
        if not (path / "cfg.json").exists():
            raise MiAssertInputError(
                f"{path} is not an SAE folder: expected cfg.json and sae_weights.safetensors "
                "(what SAE.save_model writes)"
            )
        sae = SAE.load_from_disk(path, device=dev, dtype=dtype)
        sae.cfg.metadata.mi_assert_source = f"path:{path}"
        return sae
    if spec.startswith((".", "/", "~")):
        raise MiAssertInputError(
            f"SAE path {spec!r} does not exist. Give a zoo SAE ({', '.join(available())}), an "
            "existing save_model folder, or a SAELens release with sae_id"
        )
    release = spec
    if sae_id is None:
        if "/" not in spec:
            raise MiAssertInputError(
                f"{spec!r} is neither a zoo SAE ({', '.join(available())}){suggest(spec, available())} "
                "nor a local folder; for a SAELens hub release pass sae_id=... (e.g. "
                "load_sae('gpt2-small-res-jb', sae_id='blocks.8.hook_resid_pre'))"
            )
        release, sae_id = spec.split("/", 1)
    return _load_hub(release, sae_id, dev, dtype)


#: the dtypes SAELens loads SAEs in (``load_sae(dtype=...)``)
SAE_DTYPES: tuple[str, ...] = ("float32", "float64", "float16", "bfloat16")


def _check_dtype(dtype: str | None) -> None:
    if dtype is not None and str(dtype).removeprefix("torch.") not in SAE_DTYPES:
        raise MiAssertInputError(f"dtype {dtype!r} unknown for an SAE; allowed: {', '.join(SAE_DTYPES)}")


def _load_hub(release: str, sae_id: str, device: str, dtype: str | None) -> Any:
    from sae_lens import SAE

    try:
        sae = SAE.from_pretrained(release, sae_id, device=device, dtype=dtype or "float32")
    except ValueError as exc:  # unknown release / id: a user mistake, not an availability issue
        msg = str(exc)
        if "not found" in msg or "Valid IDs" in msg:
            raise MiAssertInputError(f"SAELens release {release!r} / id {sae_id!r}: {msg}") from exc
        raise ModelUnavailableError(_offline_reason(release, sae_id, exc)) from exc
    except Exception as exc:  # noqa: BLE001 - hub clients raise many types when offline
        raise ModelUnavailableError(_offline_reason(release, sae_id, exc)) from exc
    sae.cfg.metadata.mi_assert_source = f"hub:{release}/{sae_id}"
    return sae


def _offline_reason(release: str, sae_id: str, exc: BaseException) -> str:
    first = str(exc).splitlines()[0][:200] if str(exc) else ""
    return (
        f"SAE {release}/{sae_id} could not be loaded: its weights are neither in the local "
        f"Hugging Face cache nor downloadable here ({type(exc).__name__}: {first}). "
        f"Zoo SAEs work offline: {', '.join(available())}"
    )


# ----- training --------------------------------------------------------------------------------
def _training_sae(recipe: SaeRecipe, d_in: int, model_name: str) -> Any:
    from sae_lens.saes.sae import SAEMetadata
    from sae_lens.saes.standard_sae import StandardTrainingSAE, StandardTrainingSAEConfig
    from sae_lens.saes.topk_sae import TopKTrainingSAE, TopKTrainingSAEConfig

    meta = SAEMetadata(hook_name=recipe.hook, model_name=model_name, context_size=1,
                       prepend_bos=True, mi_assert_zoo=recipe.name)
    torch.manual_seed(recipe.seed)
    if recipe.architecture == "topk":
        return TopKTrainingSAE(TopKTrainingSAEConfig(
            d_in=d_in, d_sae=recipe.d_sae, k=recipe.k, apply_b_dec_to_input=False, metadata=meta))
    if recipe.architecture == "standard":
        return StandardTrainingSAE(StandardTrainingSAEConfig(
            d_in=d_in, d_sae=recipe.d_sae, l1_coefficient=recipe.l1_coefficient,
            apply_b_dec_to_input=False, metadata=meta))
    raise MiAssertInputError(f"recipe architecture {recipe.architecture!r}: 'topk' or 'standard'")


def _source_tokens(handle: Any, prompt_kw: dict[str, Any], seed: int, split: str) -> Tensor:
    """Prompts for a model-sourced SAE: repeated random tokens (``BOS + r + r``), or with
    ``prompt_kw["corpus"] == "kjv"`` windows of running text (``split`` 'train' for training,
    the held-out 'confirm' chapters for evaluation)."""
    from mi_assert.prompts import repeated_tokens

    if prompt_kw.get("corpus") == "kjv":
        from mi_assert.zoo.natural.prompts import text_windows

        return text_windows(prompt_kw.get("n_prompts", 32), prompt_kw.get("n_tokens", 128), split, seed)
    n_ctx_len = min(prompt_kw.get("repeat_len", 20), (handle.n_ctx - 1) // 2)
    return repeated_tokens(prompt_kw.get("n_prompts", 64), n_ctx_len, handle.d_vocab, seed,
                           handle.bos_token_id)


def model_activation_batches(handle: Any, hook: str, batch_size: int, seed: int,
                             prompt_kw: dict[str, Any]) -> Iterator[Tensor]:
    """Endless shuffled token activations at ``hook`` (BOS positions left out)."""
    from mi_assert.sae.metrics import bos_mask, hook_activations

    buffer: list[Tensor] = []
    have = 0
    draw = 0
    gen = torch.Generator().manual_seed(seed)
    while True:
        while have < batch_size:
            tokens = _source_tokens(handle, prompt_kw, seed * 100_003 + draw, "train")
            draw += 1
            acts = hook_activations(handle, tokens, hook)
            flat = acts[bos_mask(handle, tokens).to(acts.device)].detach().float().cpu()
            # per-head hooks: [token, head, d_head] -> [token, head * d_head], SAELens's layout
            flat = flat.flatten(1)
            buffer.append(flat)
            have += flat.shape[0]
        pool = torch.cat(buffer)
        pool = pool[torch.randperm(pool.shape[0], generator=gen)]
        yield pool[:batch_size]
        buffer, have = [pool[batch_size:]], pool.shape[0] - batch_size


def train(name: str, out_root: Path | None = None, steps: int | None = None,
          log: Callable[[str], None] = print) -> dict[str, Any]:
    """Train zoo SAE ``name`` with SAELens's ``SAETrainer``; save it and its metrics."""
    from sae_lens.config import LoggingConfig, SAETrainerConfig
    from sae_lens.training.sae_trainer import SAETrainer

    from mi_assert.seeding import seed_everything

    recipe = _recipe(name)
    seed_everything(recipe.seed)
    n_steps = steps or recipe.steps
    if recipe.source == "synthetic":
        data = synthetic_data(name)
        d_in = data.config.d
        batches: Iterator[Tensor] = data.batches(recipe.batch_size, seed=recipe.seed)
        model_name = f"superposition-s{recipe.seed}"
    else:
        from mi_assert.loading import load_model

        handle = load_model(recipe.source, device="cpu")
        batches = model_activation_batches(handle, recipe.hook, recipe.batch_size, recipe.seed,
                                           recipe.prompt_kw)
        first = next(batches)
        d_in = int(first.shape[-1])  # d_model, d_mlp or n_heads * d_head, whatever the hook holds
        batches = itertools.chain([first], batches)
        model_name = recipe.source
    sae = _training_sae(recipe, d_in, model_name)
    cfg = SAETrainerConfig(
        total_training_samples=n_steps * recipe.batch_size,
        train_batch_size_samples=recipe.batch_size, lr=recipe.lr, lr_end=recipe.lr,
        lr_scheduler_name="constant", device="cpu", dead_feature_window=200,
        feature_sampling_window=max(n_steps, 1), logger=LoggingConfig(log_to_wandb=False),
    )
    start = time.perf_counter()
    trainer = SAETrainer(cfg=cfg, sae=sae, data_provider=batches)
    trainer.fit()
    seconds = time.perf_counter() - start
    folder = (out_root or SAE_ROOT) / name
    sae.save_inference_model(folder)
    from sae_lens import SAE

    loaded = SAE.load_from_disk(folder)
    metrics = evaluate_zoo_sae(name, loaded)
    entry = {
        "description": recipe.description, "source": recipe.source, "hook": recipe.hook,
        "architecture": loaded.cfg.architecture(), "d_in": d_in, "d_sae": recipe.d_sae,
        "training": {"steps": n_steps, "batch_size": recipe.batch_size, "lr": recipe.lr,
                     "k": recipe.k if recipe.architecture == "topk" else None,
                     "l1_coefficient": recipe.l1_coefficient if recipe.architecture == "standard" else None,
                     "seed": recipe.seed, "seconds": round(seconds, 1),
                     "trainer": "sae_lens.training.sae_trainer.SAETrainer",
                     "command": f"python -m mi_assert.sae train {name}"},
        "metrics": metrics,
    }
    if recipe.synthetic is not None:
        entry["synthetic"] = recipe.synthetic.to_dict()
    if out_root is None:
        all_entries = manifest()
        all_entries[name] = entry
        SAE_ROOT.mkdir(parents=True, exist_ok=True)
        MANIFEST_PATH.write_text(json.dumps(all_entries, indent=2, sort_keys=True) + "\n")
    log(f"{name}: trained {n_steps} steps in {seconds:.1f}s; metrics {json.dumps(metrics)}")
    return entry


@torch.no_grad()
def evaluate_zoo_sae(name: str, sae: Any) -> dict[str, Any]:
    """Held-out metrics for the manifest: explained variance (three formulas), L0, dead
    fraction, MMCS (synthetic) or CE loss recovered (model sources)."""
    from mi_assert.sae import metrics as M

    recipe = _recipe(name)
    out: dict[str, Any] = {}
    if recipe.source == "synthetic":
        data = synthetic_data(name)
        x, _ = data.sample(8192, seed=10_000 + recipe.seed)  # held-out draw
        feats, recon = M.sae_forward(sae, x)
        stats = M.reconstruction_samples(x, feats, recon)
        out["mmcs"] = round(float(M.max_cosine_per_feature(sae, data.features).mean()), 4)
        out["n_tokens"] = int(x.shape[0])
    else:
        from mi_assert.loading import load_model

        handle = load_model(recipe.source, device="cpu")
        tokens = _source_tokens(handle, {**recipe.prompt_kw, "n_prompts": 64}, 10_000 + recipe.seed,
                                "confirm")
        if recipe.prompt_kw.get("corpus") == "kjv":
            positions, where = None, "every token of held-out text"
        else:
            # CE counts the repeated half only: on the random first half the model cannot beat
            # chance, so zero-ablating the hook does not hurt there and the ratio means nothing
            rl = (tokens.shape[1] - 1) // 2
            positions, where = range(rl + 1, 2 * rl), "repeated half"
        stats, ce = M.measure_on_model(handle, sae, tokens, recipe.hook, ce_positions=positions)
        assert ce is not None  # with_ce (the default) always measures the CE losses
        out.update(ce_loss_recovered=round(ce.recovered(), 4), ce_positions=where,
                   ce_clean=round(float(ce.clean.mean()), 4), ce_sae=round(float(ce.sae.mean()), 4),
                   ce_zero_ablated=round(float(ce.zero.mean()), 4), n_tokens=stats.n_tokens)
    out.update(
        explained_variance=round(stats.explained_variance["pooled"], 4),
        explained_variance_legacy=round(stats.explained_variance["legacy"], 4),
        explained_variance_per_dim=round(stats.explained_variance["per_dim"], 4),
        l0=round(float(stats.l0[stats.mask].mean()), 3),
        dead_fraction=round(float(1.0 - stats.fired.any(0).mean()), 4),
    )
    return out


def refresh_metrics(name: str) -> dict[str, Any]:
    """Recompute a trained zoo SAE's manifest metrics (no retraining)."""
    entries = manifest()
    if name not in entries:
        raise ModelUnavailableError(f"zoo SAE {name!r} is not in the manifest; train it first")
    entries[name]["metrics"] = evaluate_zoo_sae(name, load_sae(name))
    MANIFEST_PATH.write_text(json.dumps(entries, indent=2, sort_keys=True) + "\n")
    return entries[name]["metrics"]
