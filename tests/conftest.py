"""Shared fixtures for the project's own tests."""

from __future__ import annotations

import pytest
import torch  # noqa: F401  -- pytester in-process runs must not be the first to import torch (re-import crashes)

pytest_plugins = ["pytester"]


@pytest.fixture(scope="session")
def planted():
    """(handle, circuit) for planted-induction seed 0 on the TransformerLens backend."""
    from mi_assert import load_model

    handle = load_model("planted-induction@s0", device="cpu")
    return handle, handle.meta["ground_truth"]
