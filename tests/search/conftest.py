import pytest

import mi_assert


@pytest.fixture(scope="module")
def planted():
    handle = mi_assert.load_model("planted-induction@s0")
    return handle, handle.meta["ground_truth"]
