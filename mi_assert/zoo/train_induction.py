"""Train ``attn-only-2l-induction``: a 2-layer attention-only model on repeated random tokens.

Data: ``[BOS] + r + r`` with ``r`` uniform over ids 1..63 and the repeat length ``L`` drawn per
batch from 8..32 (so no fixed look-back offset solves the task); the loss is next-token cross
entropy on the second copy only (positions whose target is predictable by induction).
Optimiser: AdamW, lr 3e-3 (torch defaults otherwise), batch 64.

Training runs on :class:`~mi_assert.zoo.fast_model.TLTwin` (plain torch, TransformerLens
parameter names and maths); the saved weights load into a ``HookedTransformer``.

Determinism: weights are initialised after ``torch.manual_seed(seed)``; batches come from a
separate ``torch.Generator`` seeded from ``seed``; training runs on one CPU thread with
deterministic kernels, so a seed gives bit-identical weights on the same machine.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from mi_assert.zoo import artifacts, evaluation
from mi_assert.zoo.fast_model import TLTwin
from mi_assert.zoo.registry import CHECKPOINT_ROOT

NAME = "attn-only-2l-induction"
BOS_TOKEN_ID = 0

#: HookedTransformerConfig kwargs (written to config.json)
MODEL_CONFIG: dict[str, Any] = {
    "n_layers": 2,
    "d_model": 64,
    "n_heads": 4,
    "d_head": 16,
    "d_vocab": 64,
    "n_ctx": 80,
    "attn_only": True,
    "normalization_type": "LN",
    "positional_embedding_type": "standard",
    "act_fn": "gelu",
    "default_prepend_bos": True,
}


@dataclass(frozen=True)
class InductionTrainConfig:
    steps: int = 1500
    batch_size: int = 64
    lr: float = 3e-3
    min_repeat: int = 8
    max_repeat: int = 32
    checkpoint_steps: tuple[int, ...] = (0, 100, 200, 300, 400, 600, 1000)


def build_model(seed: int) -> TLTwin:
    """The untrained model (TransformerLens init after ``torch.manual_seed(seed)``)."""
    torch.manual_seed(seed)
    return TLTwin(MODEL_CONFIG)


def data_generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(1_000_003 * (seed + 1))


def train_model(seed: int, config: InductionTrainConfig = InductionTrainConfig(),
                on_step: Any = None) -> tuple[TLTwin, list[float]]:
    """Train and return ``(model, per-step losses)``; ``on_step(step, model)`` runs before
    each step and after the last (step == config.steps)."""
    with artifacts.single_thread_determinism():
        model = build_model(seed)
        gen = data_generator(seed)
        opt = torch.optim.AdamW(model.parameters(), lr=config.lr)

        def step_loss(step: int, model: TLTwin) -> torch.Tensor:
            length = int(torch.randint(config.min_repeat, config.max_repeat + 1, (1,), generator=gen))
            tokens = evaluation.repeated_batch(gen, config.batch_size, length, MODEL_CONFIG["d_vocab"], BOS_TOKEN_ID)
            return evaluation.repeated_loss_and_accuracy(model(tokens), tokens, length)[0]

        losses = artifacts.fit_steps(model, opt, config.steps, step_loss, on_step=on_step)
    return model, losses


def train_to_folder(seed: int, out_root: Path = CHECKPOINT_ROOT,
                    config: InductionTrainConfig = InductionTrainConfig()) -> Path:
    """Train and write ``config.json``, ``stepK.safetensors``, ``model.safetensors`` and
    ``train_log.json`` to ``out_root/NAME/sSEED/`` (torch only: no TransformerLens needed)."""
    return artifacts.train_to_folder(out_root / NAME / f"s{seed}", MODEL_CONFIG, {
        "bos_token_id": BOS_TOKEN_ID, "zoo": NAME, "seed": seed,
        "task": "repeated random tokens, repeat length 8..32; ids 1..63, BOS 0",
    }, seed, config, train_model)


def finalize(seed: int, out_root: Path = CHECKPOINT_ROOT) -> dict[str, Any]:
    """Evaluate the written checkpoints with TransformerLens and record them in the manifest."""
    from mi_assert.loading import load_native_tl

    folder = out_root / NAME / f"s{seed}"
    log = artifacts.read_train_log(folder)
    model, _ = load_native_tl(folder)
    metrics = evaluation.induction_metrics(model.eval())
    intermediate: dict[str, Any] = {}
    for path in sorted(folder.glob("step*.safetensors"), key=lambda p: int(p.stem[4:])):
        snap, _ = load_native_tl(folder, path)
        snap_metrics = evaluation.induction_metrics(snap.eval())
        intermediate[path.stem[4:]] = {k: snap_metrics[k] for k in
                                       ("loss", "accuracy", "induction_scores", "prev_token_scores")}
    record = {
        **{k: v for k, v in log.items() if k != "loss_every_10_steps"},
        "model_config": MODEL_CONFIG,
        "metrics": metrics,
        "heads": evaluation.classify_induction_heads(metrics),
        "intermediate": intermediate,
        "files": artifacts.hash_folder(folder),
    }
    artifacts.update_manifest(NAME, f"s{seed}", record, out_root)
    return record


def train_and_save(seed: int, out_root: Path = CHECKPOINT_ROOT,
                   config: InductionTrainConfig = InductionTrainConfig()) -> dict[str, Any]:
    """Train seed ``seed``, write ``out_root/NAME/sSEED/`` and its manifest entry."""
    train_to_folder(seed, out_root, config)
    return finalize(seed, out_root)
