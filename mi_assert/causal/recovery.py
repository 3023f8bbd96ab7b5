"""Ratio-of-means statistics (normalised recovery, faithfulness) with a paired bootstrap.

Normalised recovery is ``(mean(patched) - mean(corrupted)) / (mean(clean) - mean(corrupted))``:
a ratio of means, not a mean of per-prompt ratios (per-prompt gaps can be near zero). Its
interval comes from the **paired bootstrap over prompts**: resample prompt indices with
replacement and recompute the ratio from the resampled prompts' numerator and denominator (so
the denominator's uncertainty is included). Implemented by bootstrapping the index vector with
:func:`mi_assert.stats.bootstrap_mean`'s ``statistic`` hook (scipy BCa, seeded; percentile
fallback when BCa degenerates).

Every row (a seed, or a seed × condition) is bootstrapped on its own; the claim passes when
every row's one-sided bound clears the threshold (an intersection-union test: no multiplicity
correction is needed when *all* rows must pass).
"""

from __future__ import annotations

import warnings
import zlib
from collections.abc import Mapping
from typing import Any

import numpy as np

from mi_assert.errors import MiAssertInputError
from mi_assert.stats import Evidence, SeedResult, bootstrap_mean
from mi_assert.stats.bootstrap import Alternative, BootstrapResult

#: a gap |mean(clean) - mean(corrupted)| at or below this fraction of the metric's scale is
#: treated as zero (the normalised recovery is then undefined).
RELATIVE_GAP_TOL = 1e-3
ABSOLUTE_GAP_TOL = 1e-6


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


def ratio_bootstrap(
    numerator: np.ndarray,
    denominator: np.ndarray,
    *,
    threshold: float,
    alternative: Alternative = "greater",
    alpha: float = 0.05,
    seed: int = 0,
    n_resamples: int = 2000,
) -> BootstrapResult:
    """Bootstrap ``mean(numerator) / mean(denominator)`` with paired resampling of prompts."""
    num = np.asarray(numerator, dtype=np.float64).ravel()
    den = np.asarray(denominator, dtype=np.float64).ravel()
    if num.shape != den.shape:
        raise MiAssertInputError(f"numerator has {num.size} prompts, denominator {den.size}")
    if num.size < 2:
        raise MiAssertInputError(f"need at least 2 prompts for an interval; got {num.size}")

    def ratio(idx: np.ndarray, axis: int = -1) -> np.ndarray:
        i = np.asarray(idx).astype(np.int64)
        d = den[i].mean(axis=axis)
        with np.errstate(divide="ignore", invalid="ignore"):
            r = num[i].mean(axis=axis) / d
        # a resample whose gap vanishes says nothing about the ratio: clip rather than inf
        return np.nan_to_num(r, nan=0.0, posinf=1e6, neginf=-1e6)

    with warnings.catch_warnings():
        # BCa warns on (near-)degenerate resamples and falls back to percentiles: expected when
        # every prompt gives the same value (e.g. an exactly-zero effect)
        warnings.simplefilter("ignore", RuntimeWarning)
        warnings.filterwarnings("ignore", message=".*BCa.*")
        return bootstrap_mean(np.arange(num.size, dtype=np.float64), threshold=threshold,
                              alternative=alternative, alpha=alpha, n_resamples=n_resamples,
                              seed=seed, statistic=ratio)


def row_seed(base: int, key: tuple[Any, ...]) -> int:
    return (zlib.crc32(repr(key).encode()) ^ int(base)) & 0x7FFFFFFF


RowKey = tuple[int, int | None, str]


def ratio_evidence(
    claim: str,
    metric: str,
    rows: Mapping[RowKey, tuple[np.ndarray, np.ndarray]],
    *,
    threshold: float,
    alternative: Alternative = "greater",
    alpha: float = 0.05,
    n_resamples: int = 2000,
    bootstrap_seed: int = 0,
    settings: Mapping[str, Any] | None = None,
    model_info: Mapping[str, Any] | None = None,
    details: Mapping[str, Any] | None = None,
    figures: Mapping[str, Any] | None = None,
) -> Evidence:
    """Evidence for a ratio-of-means claim over rows ``(seed, model_seed, label) -> (num, den)``.

    The verdict uses the worst row's one-sided bound (every row must pass).
    """
    if not rows:
        raise MiAssertInputError("no rows to evaluate")
    if not np.isfinite(threshold):
        raise MiAssertInputError(f"threshold must be finite; got {threshold!r}")
    greater = alternative == "greater"
    results: list[SeedResult] = []
    for key in sorted(rows, key=lambda k: (k[0], -1 if k[1] is None else k[1], k[2])):
        num, den = rows[key]
        res = ratio_bootstrap(num, den, threshold=threshold, alternative=alternative, alpha=alpha,
                              seed=row_seed(bootstrap_seed, key), n_resamples=n_resamples)
        results.append(SeedResult.from_bootstrap(key[0], res, model_seed=key[1], label=key[2]))
    bounds = [r.bound for r in results]
    bound = min(bounds) if greater else max(bounds)
    passed = bool(bound > threshold if greater else bound < threshold)
    all_settings = dict(settings or {})
    all_settings.setdefault("alpha", alpha)
    all_settings.setdefault("interval", "paired bootstrap over prompts of the ratio of means (BCa)")
    all_details = dict(details or {})
    all_details["rows_passed"] = f"{sum(r.passed for r in results)} of {len(results)}"
    all_details["p_value"] = max((r.p_value or 0.0) for r in results)
    return Evidence(
        claim=claim, metric=metric,
        estimate=float(np.mean([r.estimate for r in results])),
        low=float(min(r.low for r in results)), high=float(max(r.high for r in results)),
        bound=float(bound), n=int(sum(r.n for r in results)), threshold=float(threshold),
        alpha=float(alpha), alternative=alternative, passed=passed, per_seed=results,
        settings=all_settings, model=dict(model_info or {}), details=all_details,
        figures=dict(figures or {}),
    )


def family_evidence(claim: str, metric: str, members: list[Evidence], *,
                    settings: Mapping[str, Any] | None = None,
                    model_info: Mapping[str, Any] | None = None,
                    details: Mapping[str, Any] | None = None,
                    figures: Mapping[str, Any] | None = None) -> Evidence:
    """All members must pass (intersection-union: each at ``alpha``, no correction needed)."""
    ref = members[0]
    greater = ref.alternative == "greater"
    margins = [(m.bound - m.threshold) * (1 if greater else -1) for m in members]
    worst = members[int(np.argmin(margins))]
    all_details = dict(details or {})
    all_details["members_passed"] = f"{sum(m.passed for m in members)} of {len(members)}"
    all_details["worst_member"] = worst.claim
    return Evidence(
        claim=claim, metric=metric, estimate=float(np.mean([m.estimate for m in members])),
        low=float(min(m.low for m in members)), high=float(max(m.high for m in members)),
        bound=float(ref.threshold + min(margins) * (1 if greater else -1)),
        n=int(sum(m.n for m in members)), threshold=float(ref.threshold), alpha=ref.alpha,
        alternative=ref.alternative, passed=all(m.passed for m in members),
        per_seed=[s for m in members for s in m.per_seed], settings=dict(settings or {}),
        model=dict(model_info or ref.model), details=all_details, family=members,
        figures=dict(figures or {}),
    )
