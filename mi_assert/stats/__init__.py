"""The statistics engine every assertion family shares."""

from mi_assert.stats.bootstrap import BootstrapResult, bootstrap_mean
from mi_assert.stats.evidence import Evidence, SeedResult, fail, raise_if_failed
from mi_assert.stats.multiple import holm_adjust

__all__ = [
    "BootstrapResult",
    "Evidence",
    "SeedResult",
    "bootstrap_mean",
    "fail",
    "holm_adjust",
    "raise_if_failed",
]
