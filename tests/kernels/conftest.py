"""Fixtures shared by the kernel tests."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def planted_handle():
    """The planted-induction zoo model (attention-only, exact ground truth) on the CPU."""
    from mi_assert import load_model

    return load_model("planted-induction@s0", device="cpu")
