"""Component names: heads, sites, hooks, and clear errors for unknown/out-of-range ones."""

from __future__ import annotations

import pytest

from mi_assert.causal.components import (
    Component,
    check_positions,
    parse_component,
    parse_components,
)
from mi_assert.errors import MiAssertInputError, UnknownHookError


def test_head_spellings(planted):
    handle, _ = planted
    expected = Component("blocks.1.attn.hook_z", 1, 2)
    for spec in [(1, 2), "L1H2", "l1h2", "1.2", "1:2", " L1 H2 "]:
        assert parse_component(handle, spec) == expected
    assert parse_component(handle, (1, 2)).label == "L1H2"


def test_sites_and_hooks(planted, mlp_model):
    from mi_assert import as_handle

    handle, _ = planted
    assert parse_component(handle, "attn1").hook == "blocks.1.hook_attn_out"
    assert parse_component(handle, "resid_pre0").hook == "blocks.0.hook_resid_pre"
    assert parse_component(handle, "resid_post1").label == "resid_post1"
    assert parse_component(handle, "blocks.0.hook_resid_mid").layer == 0
    mlp = as_handle(mlp_model)
    assert parse_component(mlp, "mlp2").hook == "blocks.2.hook_mlp_out"
    assert [c.label for c in parse_components(mlp, ["L0H1", (0, 1), "mlp0"])] == ["L0H1", "mlp0"]


def test_unknown_names_suggest(planted):
    handle, _ = planted
    with pytest.raises(UnknownHookError, match="Did you mean 'attn1'"):
        parse_component(handle, "atn1")
    with pytest.raises(UnknownHookError, match="unknown hook"):
        parse_component(handle, "blocks.0.hook_resid_preX")
    with pytest.raises(MiAssertInputError, match="attention-only"):
        parse_component(handle, "mlp0")
    with pytest.raises(MiAssertInputError, match="not understood"):
        parse_component(handle, 3.5)
    with pytest.raises(MiAssertInputError, match="empty"):
        parse_components(handle, [])


def test_out_of_range(planted):
    handle, _ = planted
    with pytest.raises(MiAssertInputError, match="layer 5 is out of range"):
        parse_component(handle, "L5H0")
    with pytest.raises(MiAssertInputError, match="head 4 is out of range"):
        parse_component(handle, (1, 4))
    with pytest.raises(MiAssertInputError, match="layer 2 is out of range"):
        parse_component(handle, "resid_pre2")


def test_positions():
    assert check_positions(None, 5) is None
    assert check_positions([-1, 0, 0], 5) == [0, 4]
    with pytest.raises(MiAssertInputError, match=r"out of range: prompts have 5 tokens"):
        check_positions([5], 5)
