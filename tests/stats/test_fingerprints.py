"""Data fingerprints decide which seeds repeat the same data (merged: one row, not several
replications). Two statistics may share a fingerprint only when they resample the same data:
every input part must change it, and equal inputs must keep it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from mi_assert.stats import AUROC, ClaimSpec, Fixed, Mean, RatioOfMeans, RowStatistic

RNG = np.random.default_rng(0)
A, B, C = RNG.normal(size=12), RNG.normal(size=12), RNG.uniform(1, 2, size=12)
UNITS = [i // 2 for i in range(12)]

#: name -> (the statistic, variants that differ in exactly one input part)
CASES: dict[str, tuple[Callable[[], RowStatistic], list[Callable[[], RowStatistic]]]] = {
    "mean": (lambda: Mean(A), [lambda: Mean(B), lambda: Mean(A, units=UNITS),
                               lambda: Mean(A, units=range(12)),
                               lambda: Mean(A, unit="features"), lambda: Mean(A[:-1])]),
    "ratio": (lambda: RatioOfMeans(A, C),
              [lambda: RatioOfMeans(B, C), lambda: RatioOfMeans(A, C + 1),
               lambda: RatioOfMeans(A, C, one_minus=True), lambda: RatioOfMeans(A, C, units=UNITS)]),
    "auroc": (lambda: AUROC(A, B),
              [lambda: AUROC(C, B), lambda: AUROC(A, C), lambda: AUROC(B, A),
               lambda: AUROC(A, B, positive_units=UNITS), lambda: AUROC(A, B, negative_units=UNITS)]),
    # the same values from other prompts (ids differ, each its own unit): not the same data
    "auroc ids": (lambda: AUROC(A, B, positive_units=range(12), negative_units=range(12)),
                  [lambda: AUROC(A, B, positive_units=range(1, 13), negative_units=range(12)),
                   lambda: AUROC(A, B, positive_units=range(12), negative_units=range(1, 13))]),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_equal_data_gives_equal_fingerprints(name: str) -> None:
    make, _ = CASES[name]
    first, second = make(), make()
    assert first.fingerprint() is not None
    assert first.fingerprint() == second.fingerprint()


@pytest.mark.parametrize(("name", "variant"),
                         [(n, i) for n, (_, vs) in sorted(CASES.items()) for i in range(len(vs))])
def test_every_input_part_changes_the_fingerprint(name: str, variant: int) -> None:
    make, variants = CASES[name]
    assert variants[variant]().fingerprint() != make().fingerprint()


def test_constant_data_without_ids_is_not_comparable() -> None:
    # equal constant values could come from different prompts: never merged
    assert Mean(np.ones(10)).fingerprint() is None
    assert Mean(np.ones(10), units=range(10)).fingerprint() is not None
    assert Fixed(0.5).fingerprint() != Fixed(0.6).fingerprint() or Fixed(0.5).fingerprint() is None


def _seeds_kept(stats: dict[int, Any]) -> list[int]:
    spec = ClaimSpec(claim="c", metric="AUROC", samples=stats, threshold=0.5,
                     value_range=(0.0, 1.0), n_resamples=200)
    return sorted({key.seed for key in spec.rows})


def test_seeds_with_the_same_auroc_data_merge_and_different_data_do_not() -> None:
    assert _seeds_kept({0: AUROC(A, B), 1: AUROC(A.copy(), B.copy())}) == [0]
    assert _seeds_kept({0: AUROC(A, B), 1: AUROC(C, B)}) == [0, 1]
    assert _seeds_kept({0: AUROC(A, B), 1: AUROC(A, C)}) == [0, 1]
