"""Parsing heads given as (layer, head), names and lists."""

from __future__ import annotations

import pytest

from mi_assert.errors import MiAssertInputError
from mi_assert.heads.names import check_heads, head_name, parse_heads


@pytest.mark.parametrize("args, expected", [
    ((1, 2), [(1, 2)]),
    (("L1H2",), [(1, 2)]),
    (("l1h2",), [(1, 2)]),
    (("1.2",), [(1, 2)]),
    (("1:2",), [(1, 2)]),
    (((1, 2),), [(1, 2)]),
    (([(1, 2), (0, 3)],), [(1, 2), (0, 3)]),
    ((["L1H2", "0.3", (1, 0)],), [(1, 2), (0, 3), (1, 0)]),
    ((1, [2, 3]), [(1, 2), (1, 3)]),
    ((None, "L5H5"), [(5, 5)]),
])
def test_forms(args, expected):
    assert parse_heads(*args) == expected


@pytest.mark.parametrize("args, match", [
    ((None, None), "no head given"),
    ((1,), "only a layer"),
    (("L1X2",), "not understood"),
    (([],), "empty list"),
    (([(1, 2), "L1H2"],), "more than once"),
    ((1.5, 2), "not understood"),
    ((True, 2), "not understood"),
])
def test_bad_forms(args, match):
    with pytest.raises(MiAssertInputError, match=match):
        parse_heads(*args)


def test_range_check_names_allowed_ranges():
    assert check_heads([(1, 3)], 2, 4) == [(1, 3)]
    with pytest.raises(MiAssertInputError, match=r"layer 2 is out of range: the model has 2 layers \(0..1\)"):
        check_heads([(2, 0)], 2, 4)
    with pytest.raises(MiAssertInputError, match=r"head 4 is out of range: layer 1 has 4 heads \(0..3\)"):
        check_heads([(1, 4)], 2, 4)
    assert head_name(5, 1) == "L5H1"
