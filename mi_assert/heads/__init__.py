"""Attention-head role claims: scores, statistical assertions and discovery."""

from mi_assert.heads.assertions import (
    assert_attends_to_bos,
    assert_copying_head,
    assert_duplicate_token_head,
    assert_induction_head,
    assert_previous_token_head,
    check_attends_to_bos,
    check_copying_head,
    check_duplicate_token_head,
    check_induction_head,
    check_previous_token_head,
    check_role,
)
from mi_assert.heads.discovery import HeadRanking, HeadScore, find_heads
from mi_assert.heads.measure import (
    ROLE_INFO,
    HeadOptions,
    RoleMeasurement,
    measure_role,
    measure_roles,
)
from mi_assert.heads.names import head_name, parse_heads
from mi_assert.heads.scores import ROLES, resolve_role

__all__ = [
    "ROLES",
    "ROLE_INFO",
    "HeadOptions",
    "HeadRanking",
    "HeadScore",
    "RoleMeasurement",
    "assert_attends_to_bos",
    "assert_copying_head",
    "assert_duplicate_token_head",
    "assert_induction_head",
    "assert_previous_token_head",
    "check_attends_to_bos",
    "check_copying_head",
    "check_duplicate_token_head",
    "check_induction_head",
    "check_previous_token_head",
    "check_role",
    "find_heads",
    "head_name",
    "measure_role",
    "measure_roles",
    "parse_heads",
    "resolve_role",
]
