"""Ratio-of-means claims (normalised recovery, faithfulness) for the causal family.

Normalised recovery is ``(mean(patched) - mean(corrupted)) / (mean(clean) - mean(corrupted))``:
a ratio of means, not a mean of per-prompt ratios (per-prompt gaps can be near zero). Each
seed is one row, a :class:`~mi_assert.stats.statistic.RatioOfMeans` over the prompts
(numerator and denominator resampled together, so the denominator's uncertainty is included;
identical prompts are one unit), and the engine (:class:`~mi_assert.stats.claims.ClaimSpec`)
decides: every row's one-sided bound must clear the threshold (or ``quorum`` seeds), and the
worst row is the headline.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np

from mi_assert.errors import MiAssertInputError
from mi_assert.stats import ClaimSpec, RatioOfMeans, RowKey
from mi_assert.stats.bootstrap import Alternative
from mi_assert.stats.options import ClaimOptions

#: a gap |mean(clean) - mean(corrupted)| at or below this fraction of the metric's scale is
#: treated as zero (the normalised recovery is then undefined).
RELATIVE_GAP_TOL = 1e-3
ABSOLUTE_GAP_TOL = 1e-6

#: one row of a ratio claim: (numerator per prompt, denominator per prompt, prompt ids)
RatioRow = tuple[np.ndarray, np.ndarray, Sequence[Hashable] | None]


def check_gap(clean: np.ndarray, corrupted: np.ndarray, what: str = "clean - corrupted") -> float:
    """The mean gap, or a clear error when it is (relatively) zero."""
    gap = float(np.mean(clean) - np.mean(corrupted))
    scale = float(np.mean(np.abs(clean)) + np.mean(np.abs(corrupted)))
    if abs(gap) <= max(ABSOLUTE_GAP_TOL, RELATIVE_GAP_TOL * scale):
        raise MiAssertInputError(
            f"the {what} gap of the metric is {gap:.3g} (mean clean {np.mean(clean):.4g}, mean "
            f"corrupted {np.mean(corrupted):.4g}): normalised recovery "
            "(patched - corrupted)/(clean - corrupted) is undefined. The corrupted prompts must "
            "change the metric: check the corruption, the answer ids and the metric position"
        )
    return gap


def ratio_claim(
    claim: str,
    metric: str,
    rows: Mapping[RowKey, RatioRow],
    *,
    threshold: float,
    alternative: Alternative,
    options: ClaimOptions,
    quorum: bool = True,
    value_range: tuple[float, float] | None = None,
    settings: Mapping[str, Any] | None = None,
    model_info: Mapping[str, Any] | None = None,
    details: Mapping[str, Any] | None = None,
    figures: Mapping[str, Any] | None = None,
) -> ClaimSpec:
    """A :class:`ClaimSpec` whose rows are ratios of means over prompts.

    ``quorum=False`` ignores ``options.quorum`` (a member of a composite claim: every seed).
    """
    samples = {key: RatioOfMeans(num, den, units=units) for key, (num, den, units) in rows.items()}
    return ClaimSpec(
        claim=claim, metric=metric, samples=samples, threshold=threshold,
        alternative=alternative, quorum=options.quorum if quorum else None,
        settings=dict(settings or {}), model_info=dict(model_info or {}),
        details=dict(details or {}), figures=dict(figures or {}),
        n_resamples=options.n_resamples, min_units=options.min_prompts,
        value_range=value_range, hist_figure=False,
    )

