"""Row statistics: what one row of a claim computes from its resampled units.

A *row* is one sampling seed (and model seed, and condition) of a claim; its *units* are the
independent things the bootstrap resamples (prompts, features, tokens of a vocabulary draw).
Every statistic is written as a function of **unit weights**: a resample is a vector of
multinomial counts over the units (``[B, n_units]``), the sample itself is a vector of ones and
a jackknife sample has one zero. One representation serves a plain mean, a ratio of means
(paired: numerator and denominator come from the same resampled prompts), a count-weighted
statistic of arbitrary per-unit data (the dead-latent fraction) and a two-sample statistic
resampled per stratum (AUROC: positives and negatives keep their sizes).

Duplicated units (the same prompt twice) are not independent. A statistic built with
``units=`` (one hashable id per sample, e.g. the prompt's token ids) resamples *distinct*
units: the copies of one prompt are drawn together (a cluster bootstrap), and ``n_units`` is
the number of distinct prompts.

:func:`mi_assert.stats.bootstrap.bootstrap` is the one engine that turns a statistic into an
interval and a bound.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Hashable, Sequence
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from mi_assert.errors import MiAssertInputError

Method = Literal["BCa", "percentile"]
FloatArray = NDArray[np.float64]
#: per-unit weights ``[B, n]`` (one array per stratum) -> the statistic per resample ``[B]``
WeightedFn = Callable[..., FloatArray]


def _as_float_vector(values: object, what: str) -> FloatArray:
    try:
        detach = getattr(values, "detach", None)
        if callable(detach):
            values = detach().cpu().numpy()
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise MiAssertInputError(f"{what} must be numbers; got {type(values).__name__}") from exc
    if sum(d > 1 for d in arr.shape) > 1:
        # flattening [prompts, positions] would count every position as an independent unit
        raise MiAssertInputError(
            f"{what} must hold one value per unit (a 1-d array); got shape {tuple(arr.shape)}: "
            "reduce each unit to one value first (e.g. mean over positions), or pass the flat "
            "values with units=... naming the unit each came from")
    arr = arr.ravel()
    if arr.size == 0:
        raise MiAssertInputError(f"{what}: no samples; need at least one value per unit")
    if not np.all(np.isfinite(arr)):
        raise MiAssertInputError(
            f"{what}: {int((~np.isfinite(arr)).sum())} of {arr.size} values are NaN/inf; check "
            "the model's activations and the metric")
    return arr


def _digest(*arrays: np.ndarray | None) -> str:
    """A short hash of arrays' shapes and bytes (equal data, equal digest)."""
    h = hashlib.blake2b(digest_size=16)
    for arr in arrays:
        if arr is None:
            h.update(b"none;")
            continue
        a = np.ascontiguousarray(arr)
        h.update(f"{a.dtype.str}{a.shape};".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _ids_digest(*units: Sequence[Hashable] | None) -> str | None:
    """A short hash of the unit ids (None when no ids were given)."""
    if all(u is None for u in units):
        return None
    return hashlib.blake2b(repr([None if u is None else tuple(u) for u in units]).encode(),
                           digest_size=16).hexdigest()


def _clusters(units: Sequence[Hashable] | None, n: int, what: str) -> NDArray[np.int64] | None:
    """Cluster index of each sample (None: every sample is its own unit)."""
    if units is None:
        return None
    ids = list(units)
    if len(ids) != n:
        raise MiAssertInputError(f"{what}: {len(ids)} unit ids for {n} samples; give one id per sample")
    first: dict[Hashable, int] = {}
    out = np.empty(n, dtype=np.int64)
    for i, uid in enumerate(ids):
        out[i] = first.setdefault(uid, len(first))
    return None if len(first) == n else out


class RowStatistic:
    """Base of every row statistic (see the module docstring).

    Subclasses set ``_strata`` (samples per independently resampled stratum), ``_clusters``
    (per stratum: cluster index per sample, or None) and implement :meth:`weighted` on
    *sample* weights; this base maps unit (cluster) weights onto sample weights.
    """

    name: str = "statistic"
    #: percentile where BCa would mislead (a statistic whose resamples sit on one side)
    method: Method = "BCa"
    #: resamples drawn per call of the generator (keeps a statistic's resample stream fixed)
    batch: int | None = None
    unit: str = "prompts"
    #: a value without sampling error (its zero-width interval is not a zero-variance sample)
    exact: bool = False
    _strata: tuple[int, ...] = ()
    _cluster_of: tuple[NDArray[np.int64] | None, ...] = ()
    #: what each stratum holds, for messages (``("positive", "negative")`` for AUROC)
    stratum_names: tuple[str, ...] = ()
    #: hash of the unit ids given (None: none given)
    _unit_ids: str | None = None

    @property
    def strata(self) -> tuple[int, ...]:
        """Distinct units per stratum: what the bootstrap resamples."""
        return tuple(n if c is None else int(c.max()) + 1
                     for n, c in zip(self._strata, self._cluster_of, strict=True))

    @property
    def n_units(self) -> int:
        """Independent units resampled in all (the ``n`` every report prints)."""
        return int(sum(self.strata))

    @property
    def n_samples(self) -> int:
        """Samples (rows of data) before merging duplicated units."""
        return int(sum(self._strata))

    def of_unit_weights(self, *weights: FloatArray) -> FloatArray:
        """The statistic per resample from unit weights ``[B, n_units]`` per stratum."""
        sample_w = [w if c is None else w[:, c]
                    for w, c in zip(weights, self._cluster_of, strict=True)]
        return np.asarray(self.weighted(*sample_w), dtype=np.float64)

    def estimate(self) -> float:
        return float(self.of_unit_weights(*(np.ones((1, k)) for k in self.strata))[0])

    def weighted(self, *weights: FloatArray) -> FloatArray:  # pragma: no cover - abstract
        raise NotImplementedError

    def constant(self) -> bool:
        """Every unit gives the same value (the bootstrap has nothing to vary)."""
        return False

    def fingerprint(self) -> Hashable | None:
        """Identity of the data this statistic resamples: two statistics with equal
        fingerprints resample the same data (rows of several seeds over fixed prompts), so
        they are one sample, not two. ``None``: not comparable (only the object itself is)."""
        return None

    def _keyed(self, *parts: Hashable) -> Hashable | None:
        """A fingerprint from the data's digest and the unit ids. Constant data without unit
        ids is not comparable: equal values could come from different prompts."""
        if self._unit_ids is None and self.constant():
            return None
        return (self.name, self.unit, self._unit_ids, *parts)

    def values(self) -> FloatArray | None:
        """Per-unit values to draw as a histogram (None where a unit has no single value)."""
        return None

    def standard_errors(self, *weights: FloatArray) -> FloatArray | None:
        """The statistic's closed-form standard error per resample (unit weights ``[B, n]``
        per stratum, as :meth:`of_unit_weights`), for the studentized bootstrap; None for a
        statistic without one."""
        return None

    def _unit_sums(self, values: FloatArray) -> FloatArray:
        (clusters,) = self._cluster_of[:1]
        if clusters is None:
            return values
        return np.bincount(clusters, weights=values, minlength=self.strata[0]).astype(np.float64)


def ratio_standard_error(weights: FloatArray, numerator: FloatArray,
                         denominator: FloatArray) -> FloatArray:
    """Delta-method standard error of ``Σ w num / Σ w den`` per resample (rows of ``weights``);
    for ``den = 1`` it is the usual ``s / sqrt(n)`` of the resampled mean."""
    k = numerator.size
    total = weights @ denominator
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = (weights @ numerator) / total
        residual = numerator[None, :] - ratio[:, None] * denominator[None, :]
        variance = (weights * residual**2).sum(axis=1) * (k / (k - 1.0)) / total**2
    out: FloatArray = np.sqrt(variance)
    return out


class Mean(RowStatistic):
    """Mean of one value per sample (prompt, feature, token)."""

    name = "mean"

    def __init__(self, values: object, *, units: Sequence[Hashable] | None = None,
                 unit: str = "prompts") -> None:
        self.x = _as_float_vector(values, "samples")
        self._strata = (self.x.size,)
        self._cluster_of = (_clusters(units, self.x.size, "samples"),)
        self._unit_ids = _ids_digest(units)
        self.unit = unit

    def estimate(self) -> float:
        return float(np.mean(self.x))

    def weighted(self, *weights: FloatArray) -> FloatArray:
        (w,) = weights
        out: FloatArray = (w @ self.x) / w.sum(axis=1)
        return out

    def constant(self) -> bool:
        return bool(np.ptp(self.x) == 0)

    def fingerprint(self) -> Hashable | None:
        return self._keyed(_digest(self.x, *self._cluster_of))

    def values(self) -> FloatArray:
        return self.x

    def standard_errors(self, *weights: FloatArray) -> FloatArray:
        return ratio_standard_error(weights[0], self._unit_sums(self.x),
                                    self._unit_sums(np.ones_like(self.x)))


#: a resample whose denominator vanishes says nothing about the ratio: clipped, not inf
RATIO_CLIP = 1e6


class RatioOfMeans(RowStatistic):
    """``mean(num) / mean(den)`` (``1 -`` it with ``one_minus``), num and den resampled together.

    Normalised recovery, faithfulness, explained variance (``1 - Σerr / Σdev``) and CE loss
    recovered are ratios of means; a mean of per-prompt ratios would let near-zero per-prompt
    gaps dominate.
    """

    name = "ratio of means"

    def __init__(self, numerator: object, denominator: object, *, one_minus: bool = False,
                 units: Sequence[Hashable] | None = None, unit: str = "prompts") -> None:
        self.num = _as_float_vector(numerator, "numerator")
        self.den = _as_float_vector(denominator, "denominator")
        if self.num.shape != self.den.shape:
            raise MiAssertInputError(
                f"numerator has {self.num.size} values, denominator {self.den.size}; a ratio of "
                "means pairs them per unit")
        self.one_minus = one_minus
        self._strata = (self.num.size,)
        self._cluster_of = (_clusters(units, self.num.size, "numerator"),)
        self._unit_ids = _ids_digest(units)
        self.unit = unit

    def estimate(self) -> float:
        if self._cluster_of[0] is not None:
            return super().estimate()
        with np.errstate(divide="ignore", invalid="ignore"):
            r = float(np.mean(self.num) / np.mean(self.den))
        return 1.0 - r if self.one_minus else r

    def weighted(self, *weights: FloatArray) -> FloatArray:
        (w,) = weights
        with np.errstate(divide="ignore", invalid="ignore"):
            r = (w @ self.num) / (w @ self.den)
        r = np.nan_to_num(r, nan=0.0, posinf=RATIO_CLIP, neginf=-RATIO_CLIP)
        return 1.0 - r if self.one_minus else r

    def constant(self) -> bool:
        return bool(np.ptp(self.num) == 0 and np.ptp(self.den) == 0)

    def standard_errors(self, *weights: FloatArray) -> FloatArray:
        return ratio_standard_error(weights[0], self._unit_sums(self.num),
                                    self._unit_sums(self.den))

    def fingerprint(self) -> Hashable | None:
        return self._keyed(self.one_minus, _digest(self.num, self.den, *self._cluster_of))


class CountWeighted(RowStatistic):
    """Any statistic of per-unit data written with count weights (``fn(w [B, n]) -> [B]``)."""

    def __init__(self, fn: WeightedFn, n_samples: int, *, name: str = "count-weighted statistic",
                 method: Method = "BCa", units: Sequence[Hashable] | None = None,
                 unit: str = "prompts", batch: int | None = None) -> None:
        if n_samples < 1:
            raise MiAssertInputError("no samples: need at least one unit")
        self.fn = fn
        self.name = name
        self.method = method
        self.batch = batch
        self._strata = (int(n_samples),)
        self._cluster_of = (_clusters(units, int(n_samples), name),)
        self.unit = unit

    def weighted(self, *weights: FloatArray) -> FloatArray:
        (w,) = weights
        return np.asarray(self.fn(w), dtype=np.float64)


class AUROC(RowStatistic):
    """P(positive score > negative score) + ½ P(tie), positives and negatives resampled apart."""

    name = "AUROC"
    method: Method = "percentile"
    batch = 250
    stratum_names = ("positive", "negative")

    def __init__(self, positive: object, negative: object, *,
                 positive_units: Sequence[Hashable] | None = None,
                 negative_units: Sequence[Hashable] | None = None) -> None:
        self.pos = _as_float_vector(positive, "positive scores")
        self.neg = _as_float_vector(negative, "negative scores")
        self.wins = ((self.pos[:, None] > self.neg[None, :]).astype(np.float64)
                     + 0.5 * (self.pos[:, None] == self.neg[None, :]))
        self._strata = (self.pos.size, self.neg.size)
        self._cluster_of = (_clusters(positive_units, self.pos.size, "positive scores"),
                            _clusters(negative_units, self.neg.size, "negative scores"))
        self._unit_ids = _ids_digest(positive_units, negative_units)

    def weighted(self, *weights: FloatArray) -> FloatArray:
        wp, wn = weights
        out: FloatArray = np.einsum("bi,ij,bj->b", wp, self.wins, wn) / (wp.sum(1) * wn.sum(1))
        return out

    def constant(self) -> bool:
        return bool(np.ptp(self.wins) == 0)

    def standard_errors(self, *weights: FloatArray) -> FloatArray | None:
        """DeLong's variance from the weighted placements (None where prompts are clustered:
        copies of one prompt are not independent placements)."""
        if any(c is not None for c in self._cluster_of):
            return None
        wp, wn = weights
        m, n = self.pos.size, self.neg.size
        v10 = (wn @ self.wins.T) / wn.sum(1, keepdims=True)  # [B, m]
        v01 = (wp @ self.wins) / wp.sum(1, keepdims=True)  # [B, n]
        auc = (wp * v10).sum(1, keepdims=True) / wp.sum(1, keepdims=True)
        s10 = (wp * (v10 - auc) ** 2).sum(1) / (m - 1)
        s01 = (wn * (v01 - auc) ** 2).sum(1) / (n - 1)
        out: FloatArray = np.sqrt(s10 / m + s01 / n)
        return out

    def fingerprint(self) -> Hashable | None:
        return self._keyed(_digest(self.pos, self.neg, *self._cluster_of))


class Fixed(RowStatistic):
    """A value with no sampling error (a deterministic function of the weights).

    Nothing is resampled: the interval has zero width and ``n_units`` is the number of units
    the value was computed from (e.g. 1 weight product), labelled by ``unit``.
    """

    name = "exact value"
    exact = True

    def __init__(self, value: float, *, n_units: int = 1, unit: str = "exact value",
                 source: Hashable | None = None) -> None:
        self.value = float(_as_float_vector([value], "value")[0])
        self._strata = (int(n_units),)
        self._cluster_of = (None,)
        self.unit = unit
        #: what the value was computed from (equal sources: the same data); None: unknown
        self.source = source

    def weighted(self, *weights: FloatArray) -> FloatArray:
        return np.full(weights[0].shape[0], self.value)

    def constant(self) -> bool:
        return True

    def fingerprint(self) -> Hashable | None:
        if self.source is None:  # equal values need not come from the same data
            return None
        return (self.name, self.unit, self.value, self._strata, self.source)
