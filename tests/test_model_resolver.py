"""One model resolver: every family accepts a zoo spec string as well as a model object."""

from __future__ import annotations

import pytest

import mi_assert
from mi_assert.errors import UnsupportedModelError
from mi_assert.loading import resolve_model

SPEC = "planted-induction@s0"


def test_a_zoo_spec_and_a_handle_resolve_to_handles(planted):
    handle, _ = planted
    assert resolve_model(handle) is handle
    assert resolve_model(SPEC).spec == SPEC


def test_head_and_weight_claims_take_a_zoo_spec(planted):
    _, truth = planted
    (prev,) = truth.heads("previous_token")[:1]
    (ind,) = truth.heads("induction")[:1]
    assert mi_assert.check_previous_token_head(SPEC, *prev, seeds=[0]).passed
    assert mi_assert.check_composition(SPEC, prev, ind, kind="k").passed


def test_anything_else_is_refused_naming_what_is_allowed():
    with pytest.raises(UnsupportedModelError, match="HookedTransformer"):
        mi_assert.check_composition(object(), (0, 0), (1, 0))
