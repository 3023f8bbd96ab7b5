"""The statistics engine every assertion family shares (one path from samples to a verdict).

rows → :mod:`~mi_assert.stats.statistic` → :mod:`~mi_assert.stats.bootstrap` →
:mod:`~mi_assert.stats.claims` (Evidence) → :mod:`~mi_assert.stats.composite`.
"""

from mi_assert.stats.bootstrap import BootstrapResult, Resampled, bootstrap, bootstrap_mean
from mi_assert.stats.claims import (
    DEFAULT_MIN_UNITS,
    ClaimSpec,
    RowKey,
    evaluate_claim,
    undefined_claim,
)
from mi_assert.stats.composite import all_of, holm_family
from mi_assert.stats.evidence import Evidence, SeedResult
from mi_assert.stats.multiple import holm_adjust
from mi_assert.stats.options import ClaimOptions, claim_options
from mi_assert.stats.statistic import AUROC, CountWeighted, Fixed, Mean, RatioOfMeans, RowStatistic

__all__ = [
    "AUROC",
    "DEFAULT_MIN_UNITS",
    "BootstrapResult",
    "ClaimOptions",
    "ClaimSpec",
    "CountWeighted",
    "Evidence",
    "Fixed",
    "Mean",
    "RatioOfMeans",
    "Resampled",
    "RowKey",
    "RowStatistic",
    "SeedResult",
    "all_of",
    "bootstrap",
    "bootstrap_mean",
    "claim_options",
    "evaluate_claim",
    "holm_adjust",
    "holm_family",
    "undefined_claim",
]
