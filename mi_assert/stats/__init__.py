"""The statistics engine every assertion family shares."""

from mi_assert.stats.bootstrap import BootstrapResult, bootstrap_mean
from mi_assert.stats.claims import ClaimSpec, RowKey, evaluate_claim, evaluate_family
from mi_assert.stats.evidence import Evidence, SeedResult, fail, raise_if_failed
from mi_assert.stats.multiple import holm_adjust

__all__ = [
    "BootstrapResult",
    "ClaimSpec",
    "Evidence",
    "RowKey",
    "SeedResult",
    "bootstrap_mean",
    "evaluate_claim",
    "evaluate_family",
    "fail",
    "holm_adjust",
    "raise_if_failed",
]
