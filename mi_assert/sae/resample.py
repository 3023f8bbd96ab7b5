"""The SAE claims' row statistics, on the engine's protocol (:mod:`mi_assert.stats.statistic`).

Tokens of one prompt are correlated, so the resampled unit is the prompt: every statistic here
is built from per-prompt sums and resampled by :func:`mi_assert.stats.bootstrap.bootstrap` (the
one engine) with whole prompts as units.

* explained variance ``1 - Σ_t |x_t - x̂_t|² / Σ_t |x_t - x̄|²`` and CE loss recovered
  ``(mean CE_zero - mean CE_sae) / (mean CE_zero - mean CE_clean)`` are ratios of means
  (:class:`~mi_assert.stats.statistic.RatioOfMeans`: numerator and denominator from the same
  resampled prompts);
* MSE and L0 are token means: ratios of per-prompt sums to per-prompt token counts (a prompt
  with more counted tokens weighs more, as in SAELens's ``mse`` and ``l0``);
* the dead-latent fraction gets no bootstrap: see :func:`dead_fraction_bound`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Hashable, Sequence

import numpy as np

from mi_assert.errors import MiAssertInputError
from mi_assert.stats.statistic import Fixed, RatioOfMeans

Units = Sequence[Hashable] | None

#: how :func:`dead_fraction_bound` bounds the population's dead fraction (Evidence settings)
DEAD_FRACTION_BOUND = (
    "exact upper bound, no resampling: a latent that fires on a sampled prompt is not dead, so "
    "the latents dead in the population are a subset of those dead on the sample and the "
    "sample's dead fraction bounds the population's from above")


def explained_variance(sum_sq_err: object, sum_sq_dev: object, *, units: Units = None) -> RatioOfMeans:
    """Pooled explained variance (SAELens >= 6) from per-prompt ``Σ|x - x̂|²`` and ``Σ|x - x̄|²``."""
    return RatioOfMeans(sum_sq_err, sum_sq_dev, one_minus=True, units=units)


def ce_loss_recovered(clean: object, sae: object, zero: object, *, units: Units = None) -> RatioOfMeans:
    """``(zero - sae) / (zero - clean)`` of the per-prompt mean CE losses (SAELens's ``ce_loss_score``)."""
    c, s, z = (np.asarray(a, np.float64).ravel() for a in (clean, sae, zero))
    if not c.shape == s.shape == z.shape:
        raise MiAssertInputError(
            f"CE losses per prompt differ in length: clean {c.size}, sae {s.size}, zero {z.size}")
    return RatioOfMeans(z - s, z - c, units=units)


def token_mean(per_prompt_sum: object, per_prompt_tokens: object, *, units: Units = None) -> RatioOfMeans:
    """Mean over counted tokens of a per-token quantity, from its per-prompt sums and counts."""
    return RatioOfMeans(per_prompt_sum, per_prompt_tokens, units=units)


def dead_fraction(fired: object) -> float:
    """Share of latents that fire on no prompt (``fired``: ``[n_prompts, d_sae]`` booleans)."""
    f = np.asarray(fired, dtype=bool)
    if f.ndim != 2 or f.shape[0] == 0 or f.shape[1] == 0:
        raise MiAssertInputError(f"fired must be [n_prompts >= 1, d_sae >= 1]; got shape {f.shape}")
    return float((~f.any(axis=0)).mean())


def dead_fraction_bound(fired: object, *, units: Units = None) -> Fixed:
    """The sample's dead fraction as an exact upper bound on the population's (see
    :data:`DEAD_FRACTION_BOUND`): a zero-width interval, ``n`` = distinct prompts measured.

    A bootstrap of the dead fraction is biased upward (a resample only drops prompts, so it can
    only kill latents) and needs none: the sample value already bounds the population value.
    """
    f = np.asarray(fired, dtype=bool)
    value = dead_fraction(f)
    n = f.shape[0] if units is None else len(set(units))
    if units is not None and len(units) != f.shape[0]:
        raise MiAssertInputError(f"fired: {len(units)} unit ids for {f.shape[0]} prompts")
    source = hashlib.blake2b(np.packbits(f).tobytes() + repr((f.shape, None if units is None
                                                              else tuple(units))).encode(),
                             digest_size=16).hexdigest()
    return Fixed(value, n_units=n, unit="prompts", source=source)
