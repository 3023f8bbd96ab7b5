"""Shared fixtures for the project's own tests."""

from __future__ import annotations

import pytest
import torch  # pytester in-process runs must not be the first to import torch (re-import crashes)

pytest_plugins = ["pytester"]


@pytest.fixture(scope="session")
def planted():
    """(handle, circuit) for planted-induction seed 0 on the TransformerLens backend."""
    from mi_assert import load_model

    handle = load_model("planted-induction@s0", device="cpu")
    return handle, handle.meta["ground_truth"]


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread for a module of tiny-model tests (restored after): several threads
    are ~10x slower on a loaded 2-core CPU."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    """Every Evidence any assertion records in any test keeps the contract of
    :mod:`tests.evidence_contract` (checked after the test body, before the report drains it)."""
    result = yield
    from mi_assert.plugin import session_recorder
    from tests.evidence_contract import check_evidence

    recorder = session_recorder(item.config)
    for recorded in recorder.peek() if recorder is not None else []:
        check_evidence(recorded.evidence)
    return result
