"""Save and load tuned lenses beside a checkpoint: ``<checkpoint_dir>/lenses/<name>/``.

Each lens folder holds the ``tuned-lens`` package's two files (``TunedLens.save``):

* ``config.json``: :class:`~mi_assert.lens.translators.LensConfig` (the package's
  ``TunedLensConfig`` keys plus mi-assert's, which the package ignores with a warning);
* ``params.pt``: ``layer_translators.state_dict()`` (``"{i}.weight"`` ``[d_model, d_model]``,
  ``"{i}.bias"`` ``[d_model]``), loadable with ``torch.load(..., weights_only=True)``.

Writes are atomic per lens: both files go to a temporary folder next to the target, which then
replaces the old folder by rename, so a killed run leaves the old lens or the new one.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch

from mi_assert.errors import MiAssertInputError
from mi_assert.lens.translators import LensConfig, TunedLens

LENS_DIR = "lenses"
CONFIG_FILE = "config.json"
PARAMS_FILE = "params.pt"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def _check_name(name: Any) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise MiAssertInputError(
            f"lens name {name!r} must be a non-empty string of letters, digits, '_', '.', '-' "
            "(not starting with '.' or '-')")
    return name


def _zoo_folder(spec: str) -> Path | None:
    """The Hugging Face folder of a zoo spec such as ``kjv-gpt2-4l:step420`` (None otherwise)."""
    from mi_assert.zoo import registry

    if not registry.is_zoo_spec(spec):
        return None
    parsed = registry.parse_spec(spec)
    entry = registry.get(parsed.name)
    return entry.hf_folder(parsed.step) if entry.kind == "hf" else None


def checkpoint_dir(model_or_dir: Any) -> Path:
    """The checkpoint folder of a path or zoo spec, or of a model loaded from one."""
    if isinstance(model_or_dir, (str, Path)):
        folder = Path(model_or_dir).expanduser()
        zoo = None if folder.is_dir() else _zoo_folder(str(model_or_dir))
        if zoo is not None:
            return zoo
        if not folder.is_dir():
            raise MiAssertInputError(f"checkpoint folder {str(folder)!r} does not exist")
        return folder
    from mi_assert.loading import resolve_model

    handle = resolve_model(model_or_dir)
    folder = Path(handle.spec).expanduser()
    if folder.is_dir():
        return folder
    zoo = _zoo_folder(handle.spec)
    if zoo is not None and zoo.is_dir():
        return zoo
    raise MiAssertInputError(
        f"model {handle.spec!r} was not loaded from a local checkpoint folder (or a Hugging Face "
        "zoo model), so it has no lenses/ beside it: pass the checkpoint folder (a path) instead")


def available_lenses(model_or_dir: Any) -> list[str]:
    """Names of the lenses saved beside the checkpoint (sorted)."""
    root = checkpoint_dir(model_or_dir) / LENS_DIR
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir()
                  if p.is_dir() and not p.name.startswith(".") and (p / CONFIG_FILE).exists())


def save_lens(lens: TunedLens, model_or_dir: Any, name: str = "tuned") -> Path:
    """Write ``lens`` to ``<checkpoint_dir>/lenses/<name>/`` (replacing a lens of that name)."""
    if not isinstance(lens, TunedLens):
        raise MiAssertInputError(f"save_lens takes a TunedLens; got {type(lens).__name__}")
    name = _check_name(name)
    root = checkpoint_dir(model_or_dir) / LENS_DIR
    root.mkdir(parents=True, exist_ok=True)
    target = root / name
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".tmp", dir=root))
    old: Path | None = None
    try:
        buf = io.BytesIO()
        state = {k: v.detach().cpu().contiguous() for k, v in lens.layer_translators.state_dict().items()}
        torch.save(state, buf)
        _write_synced(tmp / PARAMS_FILE, buf.getvalue())
        _write_synced(tmp / CONFIG_FILE,
                      (json.dumps(lens.config.to_dict(), indent=2, sort_keys=True) + "\n").encode())
        os.chmod(tmp, 0o755)
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".old", dir=root))
            os.rmdir(old)
            os.replace(target, old)
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None and old.exists() and not target.exists():
            os.replace(old, target)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return target


def _write_synced(path: Path, data: bytes) -> None:
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def load_lens(model_or_checkpoint_dir: Any, name: str = "tuned") -> TunedLens:
    """The lens saved as ``name`` beside a checkpoint (a folder path, a zoo spec such as
    ``"kjv-gpt2-4l:step420"``, or a model loaded from either).

    Unknown names list the saved ones; parameters whose shapes differ from the config's name
    both shapes. A model given here is only used to find the folder: whether the lens fits the
    model is checked (and a lens from another model reported) where it is used.
    """
    name = _check_name(name)
    folder = checkpoint_dir(model_or_checkpoint_dir)
    path = folder / LENS_DIR / name
    if not (path / CONFIG_FILE).exists():
        saved = available_lenses(folder)
        raise MiAssertInputError(
            f"no lens named {name!r} beside {str(folder)!r}; saved lenses: "
            f"{', '.join(saved) if saved else 'none'} (train one with train_tuned_lens and "
            "save it with save_lens)")
    try:
        config = LensConfig.from_dict(json.loads((path / CONFIG_FILE).read_text()))
    except (json.JSONDecodeError, TypeError) as exc:
        raise MiAssertInputError(f"{path / CONFIG_FILE} is not a lens config: {exc}") from exc
    if not (path / PARAMS_FILE).exists():
        raise MiAssertInputError(f"lens {name!r} has a config but no {PARAMS_FILE} in {str(path)!r}")
    state = torch.load(path / PARAMS_FILE, map_location="cpu", weights_only=True)
    lens = TunedLens(config)
    expected = {k: tuple(v.shape) for k, v in lens.layer_translators.state_dict().items()}
    got = {k: tuple(v.shape) for k, v in state.items()}
    if set(expected) != set(got):
        raise MiAssertInputError(
            f"{path / PARAMS_FILE} holds parameters {sorted(got)}; the config "
            f"({config.num_hidden_layers} layers, bias={config.bias}) needs {sorted(expected)}")
    bad = [k for k in expected if expected[k] != got[k]]
    if bad:
        k = bad[0]
        raise MiAssertInputError(
            f"{path / PARAMS_FILE}: parameter {k!r} has shape {got[k]}, the config "
            f"(d_model={config.d_model}) needs {expected[k]}")
    lens.layer_translators.load_state_dict(state)
    return lens
