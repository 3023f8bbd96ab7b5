"""The same head claims on TransformerLens and nnsight give identical verdicts."""

from __future__ import annotations

import numpy as np
import pytest

import mi_assert
from mi_assert.heads.measure import measure_roles

ROLES = ("induction", "previous_token", "duplicate_token", "bos", "copying")


@pytest.fixture(scope="module")
def nnsight_planted():
    return mi_assert.load_model("planted-induction@s0", backend="nnsight", device="cpu")


def test_identical_verdicts_for_every_head_and_role(planted, nnsight_planted):
    handle, truth = planted
    assert nnsight_planted.backend == "nnsight"
    tl = measure_roles(handle, ROLES)
    nn = measure_roles(nnsight_planted, ROLES)
    for role in ROLES:
        assert tl[role].rows.keys() == nn[role].rows.keys()
        for key in tl[role].rows:
            np.testing.assert_allclose(tl[role].rows[key], nn[role].rows[key], atol=1e-5)
        for layer in range(2):
            for head in range(4):
                a, b = tl[role].evidence((layer, head)), nn[role].evidence((layer, head))
                assert a.passed == b.passed, (role, layer, head)
                assert a.passed == ((layer, head) in truth.heads(role)), (role, layer, head)
                assert b.estimate == pytest.approx(a.estimate, abs=1e-5)


def test_assertions_run_on_nnsight(planted, nnsight_planted):
    _, truth = planted
    ev = mi_assert.assert_induction_head(nnsight_planted, *truth.heads("induction")[0])
    assert ev.passed and ev.model["backend"] == "nnsight"
    with pytest.raises(AssertionError):
        mi_assert.assert_induction_head(nnsight_planted, *truth.heads("positional")[0])
    assert mi_assert.assert_copying_head(nnsight_planted, *truth.heads("copying")[0]).passed
