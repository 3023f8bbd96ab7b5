"""Evaluate one claim over its rows → :class:`Evidence` (the one path from samples to a verdict).

Every assertion family measures first and then hands its per-unit data here, as a
:class:`ClaimSpec`. This module is pure: numbers in, :class:`Evidence` out; no model code.

::

    rows (seed × model seed × condition) ─► RowStatistic ─► bootstrap (Resampled) ─► row verdicts
        ─► claim verdict (every row of a seed, ``quorum`` seeds) ─► Evidence (deciding row)
    several claims ─► :mod:`mi_assert.stats.composite` (all members / Holm) ─► Evidence

Rows, seeds and conditions
--------------------------
Samples come as a mapping ``row key -> data`` (or a callable ``seed -> data | {label: data}``).
A row key is an ``int`` (the sampling seed), a ``(seed, model_seed)`` pair, a
``(seed, model_seed, label)`` triple, or a :class:`RowKey`; ``label`` names a *condition* inside
one seed (e.g. ``"repeat_len=16"``). Data is a 1-d array of per-unit values (its mean is the
statistic) or any :class:`~mi_assert.stats.statistic.RowStatistic` (ratio of means, AUROC,
count-weighted ...).

* Every row is bootstrapped on its own (seeded from the row key, so a row's numbers do not
  depend on which other rows exist) and passes when its one-sided bound clears the threshold
  at level ``alpha``.
* A **seed** (one ``(seed, model_seed)`` group) passes when *all* its rows pass, and the
  **claim** when at least ``quorum`` seeds pass (default all). Both are intersection–union
  tests (Berger 1982): rejecting "some condition fails" needs every condition's null rejected
  at ``alpha``, which keeps the level at ``alpha`` with no multiplicity correction.

The headline is the **deciding row**: the worst row of the seed that decides (with every seed
required, the worst row overall; with a quorum of k, the worst row of the k-th best seed).
So ``passed`` is exactly "the headline bound clears the threshold", and the headline estimate,
interval and ``n`` are that row's. ``envelope`` is the range of all rows' intervals.

Minimum evidence: a row needs at least ``min_units`` distinct units (default
:data:`DEFAULT_MIN_UNITS`), and a statistic resampled in strata (AUROC: positives and
negatives) that many in *each* stratum; fewer (e.g. 16 copies of one prompt, 2 positives
against 30 negatives) is refused, not passed.

Seeds that repeat the data are not replications: with fixed prompts every seed's rows hold
the same data and the seeds can only vary the bootstrap. A seed whose rows (same model seed,
same conditions) resample exactly the data of an earlier seed's rows is merged into that seed:
one row per condition, bootstrapped with the resamples of all of them (``n_resamples`` per
seed), counted as one seed for the verdict and the quorum. ``details["seeds_sharing_data"]``
says which seeds were merged.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from mi_assert.errors import MiAssertInputError
from mi_assert.stats.bootstrap import (
    DEFAULT_INTERVAL,
    Alternative,
    Interval,
    Resampled,
    check_alpha,
    check_alternative,
    check_interval,
    check_n_resamples,
)
from mi_assert.stats.evidence import Evidence, SeedResult
from mi_assert.stats.statistic import Mean, RowStatistic

#: the least number of distinct units (prompts, features) a row may rest on
DEFAULT_MIN_UNITS = 8


@dataclass(frozen=True, order=True)
class RowKey:
    """Which seed a row of samples comes from, and which condition inside that seed."""

    seed: int
    model_seed: int | None = None
    label: str = ""

    @property
    def group(self) -> tuple[int, int | None]:
        return (self.seed, self.model_seed)


RowKeyLike = int | tuple[Any, ...] | RowKey
RowData = RowStatistic | np.ndarray | Sequence[float]
#: a seed -> that seed's data (one row, or a mapping label -> data for conditions)
SampleFn = Callable[[int], RowData | Mapping[str, RowData]]
Samples = Mapping[Any, RowData] | SampleFn


def as_row_key(key: RowKeyLike) -> RowKey:
    """Normalise ``int`` / ``(seed, model_seed)`` / ``(seed, model_seed, label)`` to RowKey."""
    if isinstance(key, RowKey):
        return key
    if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
        return RowKey(int(key))
    if isinstance(key, tuple) and 1 <= len(key) <= 3:
        seed = key[0]
        model_seed = key[1] if len(key) > 1 else None
        label = key[2] if len(key) > 2 else ""
        if isinstance(seed, (int, np.integer)) and (model_seed is None or isinstance(model_seed, (int, np.integer))):
            return RowKey(int(seed), None if model_seed is None else int(model_seed), str(label))
    raise MiAssertInputError(
        f"sample row key {key!r} not understood: use an int seed, (seed, model_seed), "
        "(seed, model_seed, label) or mi_assert.stats.claims.RowKey"
    )


def as_statistic(data: Any, unit: str = "prompts") -> RowStatistic:
    if isinstance(data, RowStatistic):
        return data
    return Mean(data, unit=unit)


def check_threshold(threshold: Any, alternative: Alternative,
                    value_range: tuple[float, float] | None, metric: str) -> float:
    """A finite threshold inside the metric's range that a bound can clear."""
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float, np.floating)) \
            or not math.isfinite(float(threshold)):
        raise MiAssertInputError(f"threshold must be a finite number; got {threshold!r}")
    t = float(threshold)
    if value_range is not None:
        lo, hi = value_range
        ok = lo <= t < hi if alternative == "greater" else lo < t <= hi
        if not ok:
            side = "[lo, hi)" if alternative == "greater" else "(lo, hi]"
            raise MiAssertInputError(
                f"threshold {t:g} is outside the range of the {metric} ({lo:g} to {hi:g}): a "
                f"'{alternative}' claim needs a threshold in {side} = "
                f"{'[' if alternative == 'greater' else '('}{lo:g}, {hi:g}"
                f"{')' if alternative == 'greater' else ']'}, else it passes or fails whatever "
                "the model does")
    return t


@dataclass(frozen=True)
class ClaimSpec:
    """One claim, ready to evaluate at any level (a Holm family re-reads it at its member's).

    ``value_range``: the range the metric can take (thresholds outside it are refused);
    ``min_units``: distinct units a row needs; ``unit``: what a unit is (``"prompts"``).
    """

    claim: str
    metric: str
    samples: Samples
    threshold: float
    alternative: Alternative = "greater"
    seeds: Sequence[int] | None = None
    quorum: int | float | None = None
    settings: Mapping[str, Any] = field(default_factory=dict)
    model_info: Mapping[str, Any] = field(default_factory=dict)
    details: Mapping[str, Any] = field(default_factory=dict)
    figures: Mapping[str, Any] = field(default_factory=dict)
    n_resamples: int = 2000
    bootstrap_seed: int = 0
    min_units: int = DEFAULT_MIN_UNITS
    value_range: tuple[float, float] | None = None
    unit: str = "prompts"
    hist_figure: bool = True
    #: shown with a failure (what to look at instead)
    hint: str = ""
    #: how resamples become an interval (see :mod:`mi_assert.stats.bootstrap`)
    interval: Interval = DEFAULT_INTERVAL

    def evaluate(self, alpha: float = 0.05) -> Evidence:
        return evaluate_claim(self, alpha)

    @cached_property
    def _merged(self) -> tuple[dict[RowKey, RowStatistic], dict[tuple[int, int | None], tuple[int, ...]]]:
        rows = resolve_samples(self.samples, self.seeds, self.unit)
        for key, stat in rows.items():
            _check_units(self.claim, key, stat, self.min_units)
        return _merge_repeated_seeds(_ordered_items(rows))

    @property
    def rows(self) -> dict[RowKey, RowStatistic]:
        """The rows to bootstrap, in order: resolved samples with enough units each, the seeds
        that repeat an earlier seed's data merged into it (see :attr:`repeats`)."""
        return self._merged[0]

    @property
    def repeats(self) -> dict[tuple[int, int | None], tuple[int, ...]]:
        """Per kept seed group ``(seed, model_seed)``: the later seeds whose rows held exactly
        its data (merged into it: they add bootstrap resamples, not evidence)."""
        return self._merged[1]

    @cached_property
    def resampled(self) -> dict[RowKey, Resampled]:
        """Every row's bootstrap distribution (drawn once per spec, read at any level); a row
        that seeds repeated pools their resamples (``n_resamples`` per seed)."""
        rows = self.rows
        return {key: Resampled(stat, seed=_row_seed(self.bootstrap_seed, key),
                               interval=self.interval, value_range=self.value_range,
                               n_resamples=self.n_resamples
                               * (1 + len(self.repeats.get(key.group, ()))))
                for key, stat in rows.items()}


def _check_units(claim: str, key: RowKey, stat: RowStatistic, min_units: int) -> None:
    """Refuse a row with fewer than ``min_units`` distinct units (in any stratum)."""
    if stat.n_units < min_units:
        dup = (f" ({stat.n_samples} samples, duplicates merged)"
               if stat.n_samples != stat.n_units else "")
        raise MiAssertInputError(
            f"{claim}: row {_row_name(key)} rests on {stat.n_units} distinct "
            f"{stat.unit}{dup}; a confidence bound needs at least {min_units} "
            f"(min_prompts). Give more distinct {stat.unit}")
    strata = stat.strata
    if len(strata) > 1:
        names = stat.stratum_names or tuple(f"stratum {i}" for i in range(len(strata)))
        if min(strata) < min_units:
            counts = " and ".join(f"{k} distinct {name}" for name, k in zip(names, strata, strict=True))
            raise MiAssertInputError(
                f"{claim}: row {_row_name(key)}: the {stat.name} rests on {counts} {stat.unit}; "
                f"each of {' and '.join(names)} is resampled apart and needs at least "
                f"{min_units} distinct {stat.unit} (min_prompts). Give more distinct "
                f"{' and '.join(names)} {stat.unit}")


def _merge_repeated_seeds(
    items: list[tuple[RowKey, RowStatistic]],
) -> tuple[dict[RowKey, RowStatistic], dict[tuple[int, int | None], tuple[int, ...]]]:
    """Drop the seed groups whose rows repeat an earlier group's data (same model seed, same
    conditions, equal :meth:`~RowStatistic.fingerprint` or the very same statistic); return the
    kept rows and, per kept group, the seeds merged into it."""
    groups: dict[tuple[int, int | None], list[tuple[RowKey, RowStatistic]]] = {}
    for key, stat in items:
        groups.setdefault(key.group, []).append((key, stat))
    first_with: dict[Any, tuple[int, int | None]] = {}
    repeats: dict[tuple[int, int | None], list[int]] = {}
    kept: dict[RowKey, RowStatistic] = {}
    for group, members in groups.items():
        signature = (group[1], tuple((key.label, _data_id(stat)) for key, stat in members))
        earlier = first_with.setdefault(signature, group)
        if earlier != group:
            repeats.setdefault(earlier, []).append(group[0])
            continue
        kept.update(members)
    return kept, {g: tuple(seeds) for g, seeds in repeats.items()}


def _data_id(stat: RowStatistic) -> Any:
    fingerprint = stat.fingerprint()
    return ("object", id(stat)) if fingerprint is None else (type(stat).__name__, fingerprint)


def resolve_samples(samples: Samples, seeds: Sequence[int] | None = None,
                    unit: str = "prompts") -> dict[RowKey, RowStatistic]:
    """Rows as ``RowKey -> RowStatistic`` (calls a callable once per seed)."""
    rows: dict[RowKey, RowStatistic] = {}
    if callable(samples) and not isinstance(samples, Mapping):
        if not seeds:
            raise MiAssertInputError("samples is a callable seed -> samples: pass seeds=[...] too")
        for seed in seeds:
            out = samples(int(seed))
            if isinstance(out, Mapping):
                for label, arr in out.items():
                    rows[RowKey(int(seed), None, str(label))] = as_statistic(arr, unit)
            else:
                rows[RowKey(int(seed))] = as_statistic(out, unit)
    elif isinstance(samples, Mapping):
        for key, arr in samples.items():
            row = as_row_key(key)
            if row in rows:
                raise MiAssertInputError(f"duplicate sample row {row}")
            rows[row] = as_statistic(arr, unit)
    else:
        raise MiAssertInputError(
            "samples must be a mapping {seed or (seed, model_seed[, label]): data} or a "
            f"callable seed -> data; got {type(samples).__name__}"
        )
    if not rows:
        raise MiAssertInputError("no sample rows: need at least one seed's samples")
    return rows


def _row_seed(bootstrap_seed: int, key: RowKey) -> int:
    """A bootstrap seed that depends only on the row itself (stable across row sets)."""
    return (zlib.crc32(repr((key.seed, key.model_seed, key.label)).encode()) ^ bootstrap_seed) & 0x7FFFFFFF


def quorum_count(quorum: int | float | None, n_groups: int) -> int:
    if quorum is None:
        return n_groups
    if isinstance(quorum, bool):
        raise MiAssertInputError("quorum must be an int count or a fraction in (0, 1]")
    if isinstance(quorum, (int, np.integer)):
        if not 1 <= quorum <= n_groups:
            raise MiAssertInputError(f"quorum={quorum}: must lie in 1..{n_groups} (the number of seeds)")
        return int(quorum)
    if isinstance(quorum, float) and 0 < quorum <= 1:
        return max(1, int(np.ceil(quorum * n_groups - 1e-9)))
    raise MiAssertInputError(f"quorum={quorum!r}: use an int count (1..{n_groups}) or a fraction in (0, 1]")


def standardised_margin(bound: float, estimate: float, threshold: float, alternative: str) -> float:
    """How far the bound lies beyond the threshold, in units of the bound's distance from the
    estimate (≈ one-sided standard errors); negative when it fails, -inf when undefined."""
    if not (math.isfinite(bound) and math.isfinite(estimate)):
        return -math.inf
    gap = bound - threshold if alternative == "greater" else threshold - bound
    scale = abs(estimate - bound)
    if scale == 0:
        scale = max(abs(threshold), 1.0) * 1e-9
    return gap / scale


def evaluate_claim(spec: ClaimSpec, alpha: float = 0.05) -> Evidence:
    """Bootstrap every row of ``spec`` and decide the claim (see the module docstring)."""
    alpha = check_alpha(alpha)
    alternative = check_alternative(spec.alternative)
    threshold = check_threshold(spec.threshold, alternative, spec.value_range, spec.metric)
    check_n_resamples(spec.n_resamples)
    check_interval(spec.interval)
    resampled = spec.resampled
    rows: list[SeedResult] = []
    by_group: dict[tuple[int, int | None], list[SeedResult]] = {}
    for key, dist in resampled.items():
        try:
            res = dist.result(threshold, alternative, alpha)
        except MiAssertInputError as exc:
            raise MiAssertInputError(f"{spec.claim}: row {_row_name(key)}: {exc}") from None
        row = SeedResult(seed=key.seed, estimate=res.estimate, low=res.low, high=res.high,
                         bound=res.bound, n=res.n, passed=res.passes(), p_value=res.p_value,
                         model_seed=key.model_seed, label=key.label, method=res.method,
                         threshold=threshold, alternative=alternative)
        rows.append(row)
        by_group.setdefault(key.group, []).append(row)

    def margin(r: SeedResult) -> float:  # rows share the threshold: raw margins compare
        return r.bound - threshold if alternative == "greater" else threshold - r.bound

    # each seed group: its worst row decides it (intersection over conditions)
    group_worst = [min(members, key=margin) for members in by_group.values()]
    group_p = [max(m.p_value if m.p_value is not None else 1.0 for m in members)
               for members in by_group.values()]
    try:
        k = quorum_count(spec.quorum, len(by_group))
    except MiAssertInputError as exc:
        if not spec.repeats:
            raise
        raise MiAssertInputError(
            f"{exc}: seeds over the same data only vary the bootstrap "
            f"({_repeats_text(spec.repeats, spec.n_resamples)}), so {len(by_group)} seed(s) "
            "count toward the quorum; draw fresh prompts per seed (a generator or a callable) "
            "for replications") from None
    # the k-th best group decides: the claim passes iff at least k groups pass
    order = sorted(range(len(group_worst)),
                   key=lambda i: (group_worst[i].passed, margin(group_worst[i])), reverse=True)
    deciding = group_worst[order[k - 1]]
    p_value = float(sorted(group_p)[k - 1])
    n_groups_passed = sum(all(m.passed for m in members) for members in by_group.values())

    all_settings = dict(spec.settings)
    all_settings.setdefault("alpha", alpha)
    if spec.quorum is not None:
        all_settings["quorum"] = f"{k} of {len(by_group)} seeds"
    methods = sorted({r.method for r in rows})
    all_settings.setdefault("interval", f"bootstrap over {spec.unit} ({', '.join(methods)})")
    all_details = dict(spec.details)
    all_details["seeds_passed"] = f"{n_groups_passed} of {len(by_group)}"
    if spec.repeats:
        all_details["seeds_sharing_data"] = _repeats_text(spec.repeats, spec.n_resamples)
    all_details["p_value"] = p_value
    figures = dict(spec.figures)
    stats = {key: dist.statistic for key, dist in resampled.items()}
    hist = [(key, s.values()) for key, s in stats.items()]
    if spec.hist_figure and "samples" not in figures and all(v is not None for _, v in hist):
        figures["samples"] = {
            "kind": "hist", "data": [v for _, v in hist],
            "labels": [_row_name(key) for key, _ in hist],
            "xlabel": spec.metric, "ylabel": "count",
            "title": f"{spec.claim}: per-sample {spec.metric} by seed",
            "threshold": threshold,
        }
    envelope = ((min(r.low for r in rows), max(r.high for r in rows)) if len(rows) > 1 else None)
    return Evidence(
        claim=spec.claim, metric=spec.metric, estimate=deciding.estimate, low=deciding.low,
        high=deciding.high, bound=deciding.bound, n=deciding.n, threshold=threshold,
        alpha=alpha, alternative=alternative, passed=deciding.passed,
        per_seed=tuple(rows), settings=all_settings, model=dict(spec.model_info),
        details=all_details, figures=figures, unit=next(iter(stats.values())).unit,
        deciding=deciding.name if len(rows) > 1 else "", envelope=envelope, hint=spec.hint,
    )


def undefined_claim(claim: str, metric: str, reason: str, *, threshold: float,
                    alternative: Alternative = "greater", alpha: float = 0.05,
                    n: int = 0, unit: str = "prompts",
                    settings: Mapping[str, Any] | None = None,
                    model_info: Mapping[str, Any] | None = None,
                    details: Mapping[str, Any] | None = None) -> Evidence:
    """A claim whose statistic is undefined on the data (e.g. a ratio with a non-positive
    denominator): it fails, and ``reason`` is its headline (no bound is printed as cleared)."""
    nan = float("nan")
    return Evidence(
        claim=claim, metric=metric, estimate=nan, low=nan, high=nan, bound=nan, n=int(n),
        threshold=float(threshold), alpha=check_alpha(alpha),
        alternative=check_alternative(alternative), passed=False,
        reason=f"undefined: {reason}", unit=unit, settings=dict(settings or {}),
        model=dict(model_info or {}), details=dict(details or {}),
    )


def _repeats_text(repeats: Mapping[tuple[int, int | None], Sequence[int]], n_resamples: int) -> str:
    parts = []
    for (seed, model_seed), others in repeats.items():
        model = "" if model_seed is None else f" (model seed {model_seed})"
        listed = ", ".join(str(s) for s in others)
        parts.append(f"seed{'s' if len(others) > 1 else ''} {listed} resample{'' if len(others) > 1 else 's'} "
                     f"the same data as seed {seed}{model}: one row, not {len(others) + 1} "
                     f"replications, bootstrapped with {(len(others) + 1) * n_resamples} resamples")
    return "; ".join(parts)


def _ordered_items(rows: Mapping[RowKey, RowStatistic]) -> list[tuple[RowKey, RowStatistic]]:
    """Rows by (seed, model seed); conditions keep the order the caller gave them."""
    keys = list(rows)
    order = sorted(keys, key=lambda k: (k.seed, -1 if k.model_seed is None else k.model_seed,
                                        keys.index(k)))
    return [(k, rows[k]) for k in order]


def _row_name(key: RowKey) -> str:
    name = f"seed {key.seed}"
    if key.model_seed is not None:
        name += f", model seed {key.model_seed}"
    return name + (f", {key.label}" if key.label else "")
