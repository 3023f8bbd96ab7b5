"""Writing zoo checkpoints and the training manifest (``checkpoints/manifest.json``).

Manifest layout::

    {"format": 1,
     "models": {NAME: {"s0": {"seed": 0, "steps": ..., "train_config": {...},
                              "metrics": {...}, "files": {"model.safetensors": SHA256, ...},
                              "n_params": ..., "train_seconds": ..., "torch": "2.x", ...}}}}

HF-format models (``tiny-gpt2``) use the key ``"build"`` instead of ``"sSEED"``.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import platform
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any, cast

import torch

from mi_assert.zoo.registry import CHECKPOINT_ROOT

MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = 1


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def hash_folder(folder: Path, pattern: str = "*") -> dict[str, str]:
    """sha256 of every file under ``folder`` matching ``pattern`` (relative posix paths)."""
    return {p.relative_to(folder).as_posix(): sha256_file(p)
            for p in sorted(folder.rglob(pattern)) if p.is_file()}


def save_tl_weights(state: dict[str, torch.Tensor], path: Path, step: int) -> None:
    """TransformerLens-named parameters (no constant buffers) as safetensors, step in the metadata."""
    from safetensors.torch import save_file

    save_file({k: v.detach().contiguous().clone() for k, v in state.items()}, str(path),
              metadata={"step": str(step)})


TRAIN_LOG = "train_log.json"


def write_train_log(folder: Path, log: dict[str, Any]) -> None:
    """Facts only the training run knows (wall time, losses), kept beside the weights."""
    (folder / TRAIN_LOG).write_text(json.dumps(log, indent=1) + "\n")


def read_train_log(folder: Path) -> dict[str, Any]:
    return cast(dict[str, Any], json.loads((folder / TRAIN_LOG).read_text()))


def write_tl_config(folder: Path, cfg_kwargs: dict[str, Any], meta: dict[str, Any]) -> None:
    """``config.json``: HookedTransformerConfig kwargs plus an ``mi_assert`` metadata key."""
    folder.mkdir(parents=True, exist_ok=True)
    payload = {**cfg_kwargs, "mi_assert": meta}
    (folder / "config.json").write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def environment() -> dict[str, str]:
    return {"torch": torch.__version__, "python": platform.python_version(),
            "machine": platform.machine()}


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Serialise manifest updates (``train-all`` may run trainings in parallel processes)."""
    lock = path.with_suffix(".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def read_manifest(root: Path = CHECKPOINT_ROOT) -> dict[str, Any]:
    path = root / MANIFEST_NAME
    if not path.exists():
        return {"format": MANIFEST_FORMAT, "models": {}}
    return cast(dict[str, Any], json.loads(path.read_text()))


def update_manifest(name: str, key: str, record: dict[str, Any], root: Path = CHECKPOINT_ROOT) -> None:
    """Set ``manifest["models"][name][key] = record`` (read-modify-write under a lock)."""
    path = root / MANIFEST_NAME
    with _locked(path):
        data = read_manifest(root)
        data.setdefault("models", {}).setdefault(name, {})[key] = record
        data["models"][name] = dict(sorted(data["models"][name].items()))
        data["models"] = dict(sorted(data["models"].items()))
        path.write_text(json.dumps(data, indent=1, sort_keys=False) + "\n")
    with contextlib.suppress(OSError):
        path.with_suffix(".lock").unlink()


@contextlib.contextmanager
def single_thread_determinism() -> Iterator[None]:
    """One intra-op thread and deterministic kernels while training.

    Float reductions split across threads in a thread-count-dependent way, so weights are
    bit-identical for a seed only at a fixed thread count; training pins it to 1.
    """
    threads = torch.get_num_threads()
    was_deterministic = torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(was_deterministic)


def fit_steps(model: torch.nn.Module, opt: torch.optim.Optimizer, steps: int,
              step_loss: Callable[[int, Any], torch.Tensor], *, on_step: Any = None,
              scheduler: Any = None) -> list[float]:
    """The zoo's training loop: ``steps`` AdamW-style steps on ``step_loss(step, model)``.

    ``on_step(step, model)`` runs before each step and after the last (step == ``steps``, the
    model back in eval mode); ``scheduler.step()`` follows each optimiser step. Returns the
    per-step losses. Callers wrap it in :func:`single_thread_determinism`.
    """
    losses: list[float] = []
    model.train()
    for step in range(steps):
        if on_step is not None:
            on_step(step, model)
        loss = step_loss(step, model)
        opt.zero_grad(set_to_none=True)
        cast(Any, loss).backward()  # torch leaves Tensor.backward unannotated
        opt.step()
        if scheduler is not None:
            scheduler.step()
        losses.append(float(loss.detach()))
    model.eval()
    if on_step is not None:
        on_step(steps, model)
    return losses


def train_to_folder(folder: Path, model_config: dict[str, Any], meta: dict[str, Any], seed: int,
                    config: Any, train_model: Callable[..., tuple[Any, list[float]]]) -> Path:
    """Train with ``train_model(seed, config, on_step=...)`` and write ``config.json``,
    ``stepK.safetensors`` (at ``config.checkpoint_steps``), ``model.safetensors`` and
    ``train_log.json`` to ``folder`` (torch only: no TransformerLens needed)."""
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.safetensors"):
        old.unlink()
    write_tl_config(folder, model_config, meta)

    def save(step: int, model: Any) -> None:
        if step in config.checkpoint_steps:
            save_tl_weights(model.tl_state_dict(), folder / f"step{step}.safetensors", step)

    start = time.perf_counter()
    model, losses = train_model(seed, config, on_step=save)
    seconds = time.perf_counter() - start
    save_tl_weights(model.tl_state_dict(), folder / "model.safetensors", config.steps)
    write_train_log(folder, {
        "seed": seed, "steps": config.steps, "train_config": asdict(config),
        "train_seconds": round(seconds, 2), "threads": 1,
        "final_train_loss": sum(losses[-20:]) / 20, "loss_every_10_steps": losses[::10],
        "n_params": sum(p.numel() for p in model.parameters()), **environment(),
    })
    return folder
