"""Train ``ioi-small``: a small transformer with MLPs on the synthetic IOI task.

Data: :func:`mi_assert.prompts.ioi.sample_training_batch` on the *fit* templates only (the
held-out templates, with name positions never seen in training, measure generalisation), with
10% filler-word noise (each non-slot word may become a random template word) so every
template word's embedding is trained to be ignorable. The loss is cross entropy at the END
position only (the final ``to``), target = the indirect object; the model is not trained to
predict any other position.

Training runs on :class:`~mi_assert.zoo.fast_model.TLTwin` (plain torch, TransformerLens
parameter names and maths); the saved weights load into a ``HookedTransformer``.

Determinism: as in :mod:`mi_assert.zoo.train_induction` (seeded init, seeded data generator,
one CPU thread, deterministic kernels).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from mi_assert.prompts import ioi
from mi_assert.zoo import artifacts, evaluation
from mi_assert.zoo.fast_model import TLTwin
from mi_assert.zoo.registry import CHECKPOINT_ROOT

NAME = "ioi-small"

#: HookedTransformerConfig kwargs (written to config.json)
MODEL_CONFIG: dict[str, Any] = {
    "n_layers": 3,
    "d_model": 64,
    "n_heads": 4,
    "d_head": 16,
    "d_mlp": 256,
    "d_vocab": ioi.VOCAB_SIZE,
    "n_ctx": 32,
    "act_fn": "gelu",
    "normalization_type": "LN",
    "positional_embedding_type": "standard",
    "default_prepend_bos": True,
}

#: the bar every committed seed must clear on the held-out templates
HELDOUT_ACCURACY_BAR = 0.95


@dataclass(frozen=True)
class IOITrainConfig:
    steps: int = 1000
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 0.01
    filler_noise: float = 0.1
    warmup_steps: int = 100
    checkpoint_steps: tuple[int, ...] = (0,)


def build_model(seed: int) -> TLTwin:
    """The untrained model (TransformerLens init after ``torch.manual_seed(seed)``)."""
    torch.manual_seed(seed)
    return TLTwin(MODEL_CONFIG)


def data_generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(2_000_003 * (seed + 1))


def _lr_factor(step: int, config: IOITrainConfig) -> float:
    """Linear warm-up, then linear decay to 10% at the last step."""
    if step < config.warmup_steps:
        return (step + 1) / config.warmup_steps
    remaining = (config.steps - step) / max(1, config.steps - config.warmup_steps)
    return 0.1 + 0.9 * remaining


def train_model(seed: int, config: IOITrainConfig = IOITrainConfig(),
                on_step: Any = None) -> tuple[TLTwin, list[float]]:
    """Train and return ``(model, per-step losses)``; ``on_step(step, model)`` runs before
    each step and after the last (step == config.steps)."""
    with artifacts.single_thread_determinism():
        model = build_model(seed)
        gen = data_generator(seed)
        opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: _lr_factor(step, config))

        def step_loss(step: int, model: TLTwin) -> torch.Tensor:
            batch = ioi.sample_training_batch(gen, config.batch_size, "fit", config.filler_noise)
            logits = model(batch.tokens)[:, batch.end_pos]
            return torch.nn.functional.cross_entropy(logits, batch.io)

        losses = artifacts.fit_steps(model, opt, config.steps, step_loss, on_step=on_step,
                                     scheduler=sched)
    return model, losses


def train_to_folder(seed: int, out_root: Path = CHECKPOINT_ROOT,
                    config: IOITrainConfig = IOITrainConfig()) -> Path:
    """Train and write ``config.json``, ``stepK.safetensors``, ``model.safetensors`` and
    ``train_log.json`` to ``out_root/NAME/sSEED/`` (torch only: no TransformerLens needed)."""
    return artifacts.train_to_folder(out_root / NAME / f"s{seed}", MODEL_CONFIG, {
        "bos_token_id": ioi.BOS_TOKEN_ID, "zoo": NAME, "seed": seed,
        "task": "synthetic IOI (mi_assert.prompts.ioi), loss at END only, fit templates",
        "vocab": "mi_assert.prompts.ioi.VOCAB",
    }, seed, config, train_model)


def finalize(seed: int, out_root: Path = CHECKPOINT_ROOT) -> dict[str, Any]:
    """Write the tokenizer, evaluate with TransformerLens, record in the manifest."""
    from mi_assert.loading import load_native_tl

    folder = out_root / NAME / f"s{seed}"
    ioi.save_tokenizer(folder / "tokenizer")
    log = artifacts.read_train_log(folder)
    model, _ = load_native_tl(folder)
    intermediate: dict[str, Any] = {}
    for path in sorted(folder.glob("step*.safetensors"), key=lambda p: int(p.stem[4:])):
        snap, _ = load_native_tl(folder, path)
        intermediate[path.stem[4:]] = evaluation.ioi_metrics(snap.eval())
    record = {
        **{k: v for k, v in log.items() if k != "loss_every_10_steps"},
        "model_config": MODEL_CONFIG,
        "metrics": evaluation.ioi_metrics(model.eval()),
        "bars": {"heldout_accuracy": HELDOUT_ACCURACY_BAR},
        "intermediate": intermediate,
        "files": artifacts.hash_folder(folder),
    }
    artifacts.update_manifest(NAME, f"s{seed}", record, out_root)
    return record


def train_and_save(seed: int, out_root: Path = CHECKPOINT_ROOT,
                   config: IOITrainConfig = IOITrainConfig()) -> dict[str, Any]:
    """Train seed ``seed``, write ``out_root/NAME/sSEED/`` (+ ``tokenizer/``) and its manifest entry."""
    train_to_folder(seed, out_root, config)
    return finalize(seed, out_root)
