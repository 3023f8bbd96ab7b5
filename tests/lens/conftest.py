"""Fixtures for lens tests: the KJV GPT-2 checkpoints, held-out prompts, small trained lenses.

The real language model is the latest checkpoint present, when it is a trained one (step 400
or later); the earliest checkpoint has the same shape and is a different (barely trained) model. Lenses are trained on the
held-out 'fit' chapters and measured on the 'confirm' chapters (disjoint text).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2] / "mi_assert" / "zoo" / "checkpoints" / "kjv-gpt2-4l"
#: a checkpoint from this step on is a real language model; the earliest one is barely trained
MIN_TRAINED_STEP = 400
#: small lenses: a few seconds each on 2 loaded cores
TRAIN = {"steps": 40, "lr": 3e-3, "batch_size": 8, "seed": 0}


def _checkpoints() -> dict[int, Path]:
    out = {}
    for path in ROOT.glob("step*"):
        if path.name[4:].isdigit() and (path / "model.safetensors").exists():
            out[int(path.name[4:])] = path
    return dict(sorted(out.items()))


def trained_checkpoint() -> Path:
    """The latest checkpoint, when it is a trained one (step >= MIN_TRAINED_STEP)."""
    steps = _checkpoints()
    if not steps or max(steps) < MIN_TRAINED_STEP:
        pytest.skip(f"no trained KJV checkpoint (step{MIN_TRAINED_STEP} or later) under {ROOT}")
    return steps[max(steps)]


def early_checkpoint() -> Path:
    """The earliest checkpoint: the same shape as the trained one, another model."""
    steps = _checkpoints()
    if not steps or min(steps) >= MIN_TRAINED_STEP:
        pytest.skip(f"no early KJV checkpoint (before step{MIN_TRAINED_STEP}) under {ROOT}")
    return steps[min(steps)]


@pytest.fixture(scope="session")
def lens_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def kjv(lens_threads):
    from mi_assert import load_model

    return load_model(trained_checkpoint(), backend="transformer_lens", device="cpu")


@pytest.fixture(scope="session")
def kjv_early(lens_threads):
    from mi_assert import load_model

    return load_model(early_checkpoint(), backend="transformer_lens", device="cpu")


@pytest.fixture(scope="session")
def train_tokens(kjv):
    from mi_assert.lens.data import text_windows
    from mi_assert.zoo.natural.prompts import heldout_chapters

    return text_windows(kjv, [c.text for c in heldout_chapters("fit")], 64, max_windows=128)


@pytest.fixture(scope="session")
def prompts(kjv):
    """24 distinct 64-token prompts (BOS + 63) from the held-out 'confirm' chapters."""
    from mi_assert.lens.data import text_windows
    from mi_assert.zoo.natural.prompts import heldout_chapters

    return text_windows(kjv, [c.text for c in heldout_chapters("confirm")], 64, max_windows=24)


@pytest.fixture(scope="session")
def lens(kjv, train_tokens):
    from mi_assert.lens.train import train_tuned_lens

    return train_tuned_lens(kjv, train_tokens, **TRAIN)


@pytest.fixture(scope="session")
def wrong_lens(kjv_early, train_tokens):
    """A lens trained on the earliest checkpoint: the same shape, another model."""
    from mi_assert.lens.train import train_tuned_lens

    return train_tuned_lens(kjv_early, train_tokens, **TRAIN)
