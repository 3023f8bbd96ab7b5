"""Evaluate a claim over seeds (and a family of claims under Holm) → :class:`Evidence`.

This is the one routine every assertion family calls after it has measured per-sample scores
(per prompt, per token, per feature). It is pure: numbers in, :class:`Evidence` out; no model
code, no torch.

Rows, seeds and conditions
--------------------------
Samples come as a mapping ``row key -> 1-d array`` (or a callable, see :func:`evaluate_claim`).
A row key is an ``int`` (the sampling seed), a ``(seed, model_seed)`` pair, a
``(seed, model_seed, label)`` triple, or a :class:`RowKey`. ``label`` names a *condition*
inside one seed (e.g. ``"repeat_len=16"``).

* Every row is bootstrapped on its own (:func:`~mi_assert.stats.bootstrap.bootstrap_mean`,
  seeded from the row key, so a row's numbers do not depend on which other rows exist) and
  passes when its one-sided bound clears the threshold at the row level ``alpha``.
* A **seed** (one ``(seed, model_seed)`` group) passes when *all* its rows pass. Requiring every
  condition is an intersection–union test: the claim "holds under every condition" is rejected
  unless each condition's null is rejected at ``alpha``, which keeps the error rate at ``alpha``
  without any multiplicity correction (Berger 1982).
* The **claim** passes when at least ``quorum`` seeds pass (default: all of them; again an
  intersection–union test).

Aggregates reported in the :class:`Evidence`
--------------------------------------------
* ``estimate``: mean of the per-row estimates (each row weighs the same, whatever its n).
* ``bound``: the bound that decides the verdict, so ``passed`` is always "``bound`` clears
  ``threshold``": each seed's bound is its worst row's bound; with all seeds required it is the
  worst seed's bound, with a quorum of k it is the k-th best seed bound.
* ``low``/``high``: the envelope (union) of the per-row two-sided intervals: every row's
  interval lies inside it. It is a conservative summary, not a pooled interval.
* ``n``: total samples over all rows.
* ``details["p_value"]``: the claim-level bootstrap p-value (max over a seed's rows; with a
  quorum of k the k-th smallest seed p-value), used to order members under Holm.

Families
--------
:func:`evaluate_family` checks several claims in one call (e.g. a list of heads) with Holm's
step-down procedure: members are ordered by p-value; the member of rank r (0-based) of m is
re-evaluated at ``alpha / (m - r)`` (so its reported bound is the bound at that level), and
once one member fails every later one fails too. Family-wise error stays at ``alpha``. The
family :class:`Evidence` passes only when every member passes and lists each member.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from mi_assert.errors import MiAssertInputError
from mi_assert.stats.bootstrap import Alternative, bootstrap_mean
from mi_assert.stats.evidence import Evidence, SeedResult
from mi_assert.stats.multiple import holm_alphas


@dataclass(frozen=True, order=True)
class RowKey:
    """Which seed a row of samples comes from, and which condition inside that seed."""

    seed: int
    model_seed: int | None = None
    label: str = ""

    @property
    def group(self) -> tuple[int, int | None]:
        return (self.seed, self.model_seed)


RowKeyLike = int | tuple | RowKey
Samples = np.ndarray | Sequence[float]
#: a seed -> samples for that seed (one array, or a mapping label -> array for conditions)
SampleFn = Callable[[int], Samples | Mapping[str, Samples]]


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


@dataclass
class ClaimSpec:
    """Everything :func:`evaluate_claim` needs, so a family can re-evaluate a member at its
    Holm level. Fields mirror :func:`evaluate_claim`'s arguments."""

    claim: str
    metric: str
    samples: Mapping[Any, Samples] | SampleFn
    threshold: float
    alternative: Alternative = "greater"
    seeds: Sequence[int] | None = None
    quorum: int | float | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    model_info: dict[str, Any] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    figures: dict[str, Any] = field(default_factory=dict)
    n_resamples: int = 2000
    bootstrap_seed: int = 0
    min_n: int = 2

    def evaluate(self, alpha: float) -> Evidence:
        return evaluate_claim(
            self.claim, self.metric, self.samples, threshold=self.threshold,
            alternative=self.alternative, alpha=alpha, seeds=self.seeds, quorum=self.quorum,
            settings=self.settings, model_info=self.model_info, details=self.details,
            figures=self.figures, n_resamples=self.n_resamples,
            bootstrap_seed=self.bootstrap_seed, min_n=self.min_n,
        )


def resolve_samples(
    samples: Mapping[Any, Samples] | SampleFn, seeds: Sequence[int] | None = None
) -> dict[RowKey, np.ndarray]:
    """Rows as ``RowKey -> float64 array`` (calls a callable once per seed)."""
    rows: dict[RowKey, np.ndarray] = {}
    if callable(samples) and not isinstance(samples, Mapping):
        if not seeds:
            raise MiAssertInputError("samples is a callable seed -> samples: pass seeds=[...] too")
        for seed in seeds:
            out = samples(int(seed))
            if isinstance(out, Mapping):
                for label, arr in out.items():
                    rows[RowKey(int(seed), None, str(label))] = _as_array(arr)
            else:
                rows[RowKey(int(seed))] = _as_array(out)
    elif isinstance(samples, Mapping):
        for key, arr in samples.items():
            row = as_row_key(key)
            if row in rows:
                raise MiAssertInputError(f"duplicate sample row {row}")
            rows[row] = _as_array(arr)
    else:
        raise MiAssertInputError(
            "samples must be a mapping {seed or (seed, model_seed[, label]): array} or a "
            f"callable seed -> array; got {type(samples).__name__}"
        )
    if not rows:
        raise MiAssertInputError("no sample rows: need at least one seed's samples")
    return rows


def _as_array(arr: Any) -> np.ndarray:
    try:
        return np.asarray(getattr(arr, "detach", lambda: arr)(), dtype=np.float64).ravel()
    except (TypeError, ValueError) as exc:
        raise MiAssertInputError(f"samples must be numbers; got {type(arr).__name__}") from exc


def _row_seed(bootstrap_seed: int, key: RowKey) -> int:
    """A bootstrap seed that depends only on the row itself (stable across row sets)."""
    return (zlib.crc32(repr((key.seed, key.model_seed, key.label)).encode()) ^ bootstrap_seed) & 0x7FFFFFFF


def _quorum_count(quorum: int | float | None, n_groups: int) -> int:
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


def evaluate_claim(
    claim: str,
    metric: str,
    samples: Mapping[Any, Samples] | SampleFn,
    *,
    threshold: float,
    alternative: Alternative = "greater",
    alpha: float = 0.05,
    seeds: Sequence[int] | None = None,
    quorum: int | float | None = None,
    settings: Mapping[str, Any] | None = None,
    model_info: Mapping[str, Any] | None = None,
    details: Mapping[str, Any] | None = None,
    figures: Mapping[str, Any] | None = None,
    n_resamples: int = 2000,
    bootstrap_seed: int = 0,
    min_n: int = 2,
    hist_figure: bool = True,
) -> Evidence:
    """Bootstrap every seed's samples and decide the claim (see the module docstring).

    Args:
        claim: what is claimed, in words (``"L1H2 is an induction head"``).
        metric: what the samples measure (``"induction score"``).
        samples: ``{row key: 1-d array}`` (keys: int seed, ``(seed, model_seed)``,
            ``(seed, model_seed, label)`` or :class:`RowKey`), or a callable
            ``seed -> array | {label: array}`` evaluated for each of ``seeds``.
        threshold: the value the one-sided bound must clear.
        alternative: ``"greater"`` (claim: mean above threshold) or ``"less"``.
        alpha: row-level significance (the one-sided bound is at ``1 - alpha``).
        seeds: the seeds to call ``samples`` with when it is a callable.
        quorum: how many seeds must pass (int) or which fraction (float); default all.
        settings / model_info / details / figures: copied into the Evidence.
        n_resamples, bootstrap_seed: bootstrap settings (results are deterministic).
        min_n: rows with fewer samples raise :class:`MiAssertInputError` (a single number is
            not evidence).
        hist_figure: add ``figures["samples"]`` (kind ``"hist"``): the per-row samples.

    Returns:
        :class:`Evidence`; ``passed`` says whether the claim holds. Nothing is raised for a
        failed claim: callers pass it to :func:`~mi_assert.stats.evidence.raise_if_failed`.
    """
    if alternative not in ("greater", "less"):
        raise MiAssertInputError(f"alternative {alternative!r}: allowed 'greater' or 'less'")
    if not np.isfinite(threshold):
        raise MiAssertInputError(f"threshold must be a finite number; got {threshold!r}")
    rows = resolve_samples(samples, seeds)
    for key, arr in rows.items():
        if arr.size < min_n:
            raise MiAssertInputError(
                f"row {key} has {arr.size} sample(s); need at least {min_n} per seed for a "
                "confidence bound (draw more prompts)"
            )
    greater = alternative == "greater"
    results: list[SeedResult] = []
    by_group: dict[tuple[int, int | None], list[SeedResult]] = {}
    for key in _ordered(rows):
        res = bootstrap_mean(rows[key], threshold=threshold, alternative=alternative, alpha=alpha,
                             n_resamples=n_resamples, seed=_row_seed(bootstrap_seed, key))
        seed_result = SeedResult.from_bootstrap(key.seed, res, model_seed=key.model_seed,
                                                label=key.label)
        results.append(seed_result)
        by_group.setdefault(key.group, []).append(seed_result)

    # each seed group: worst row decides (intersection over conditions)
    group_bounds: list[float] = []
    group_p: list[float] = []
    for members in by_group.values():
        bounds = [m.bound for m in members]
        group_bounds.append(min(bounds) if greater else max(bounds))
        group_p.append(max(m.p_value if m.p_value is not None else 1.0 for m in members))
    k = _quorum_count(quorum, len(by_group))
    # k-th best group bound: the claim passes iff at least k groups clear the threshold
    ordered = sorted(group_bounds, reverse=greater)
    bound = float(ordered[k - 1])
    p_value = float(sorted(group_p)[k - 1])
    passed = bool(bound > threshold if greater else bound < threshold)
    n_groups_passed = sum(
        all(m.passed for m in members) for members in by_group.values()
    )

    all_settings = dict(settings or {})
    all_settings.setdefault("alpha", alpha)
    if quorum is not None:
        all_settings["quorum"] = f"{k} of {len(by_group)} seeds"
    all_details = dict(details or {})
    all_details["seeds_passed"] = f"{n_groups_passed} of {len(by_group)}"
    all_details["p_value"] = p_value
    all_figures = dict(figures or {})
    if hist_figure and "samples" not in all_figures:
        all_figures["samples"] = {
            "kind": "hist",
            "data": [rows[key] for key in _ordered(rows)],
            "labels": [_row_name(key) for key in _ordered(rows)],
            "xlabel": metric, "ylabel": "count",
            "title": f"{claim}: per-sample {metric} by seed",
            "threshold": threshold,
        }
    return Evidence(
        claim=claim, metric=metric,
        estimate=float(np.mean([r.estimate for r in results])),
        low=float(min(r.low for r in results)), high=float(max(r.high for r in results)),
        bound=bound, n=int(sum(r.n for r in results)), threshold=float(threshold),
        alpha=float(alpha), alternative=alternative, passed=passed, per_seed=results,
        settings=all_settings, model=dict(model_info or {}), details=all_details,
        figures=all_figures,
    )


def _ordered(rows: Mapping[RowKey, Any]) -> list[RowKey]:
    """Rows by (seed, model seed); conditions keep the order the caller gave them."""
    keys = list(rows)
    return sorted(keys, key=lambda k: (k.seed, -1 if k.model_seed is None else k.model_seed,
                                       keys.index(k)))


def _row_name(key: RowKey) -> str:
    name = f"seed {key.seed}"
    if key.model_seed is not None:
        name += f", model seed {key.model_seed}"
    return name + (f", {key.label}" if key.label else "")


Member = ClaimSpec | Callable[[float], Evidence]


def evaluate_family(
    members: Sequence[Member],
    *,
    alpha: float = 0.05,
    claim: str | None = None,
    metric: str | None = None,
    settings: Mapping[str, Any] | None = None,
    model_info: Mapping[str, Any] | None = None,
    details: Mapping[str, Any] | None = None,
    figures: Mapping[str, Any] | None = None,
) -> Evidence:
    """Holm-corrected verdict over several claims checked in one call.

    ``members`` are :class:`ClaimSpec` objects or callables ``alpha -> Evidence`` (so each
    member can be re-evaluated at its Holm level and report the bound at that level). A single
    member is simply evaluated at ``alpha``.

    The returned Evidence lists every member (``family``), in the order given, each with the
    level it was tested at (``settings["holm_alpha"]``) and its Holm rank. Its ``bound`` is the
    worst member's bound *margin* re-expressed on the first failing (or worst) member, so
    ``passed`` is "every member passed"; ``estimate`` is the mean of member estimates and
    ``[low, high]`` the envelope of member intervals.
    """
    if not members:
        raise MiAssertInputError("a family needs at least one member claim")
    if not 0 < alpha < 0.5:
        raise MiAssertInputError(f"alpha must lie in (0, 0.5); got {alpha}")
    evaluate = [m.evaluate if isinstance(m, ClaimSpec) else m for m in members]
    first = [fn(alpha) for fn in evaluate]
    m = len(members)
    if m == 1:
        final = first
        order = [0]
        levels = [alpha]
    else:
        # order by p-value; ties broken by the standardised margin (bound beyond threshold)
        def sort_key(i: int) -> tuple[float, float]:
            ev = first[i]
            return (float(ev.details.get("p_value", 1.0)), -_margin(ev))

        order = sorted(range(m), key=sort_key)
        levels = [0.0] * m
        final = list(first)
        alive = True
        for rank, (idx, level) in enumerate(zip(order, holm_alphas(m, alpha), strict=True)):
            levels[idx] = level
            # the last rank is tested at alpha itself: its first evaluation already is that
            ev = first[idx] if level == alpha else evaluate[idx](level)
            if not alive:
                ev.passed = False
                ev.details["holm"] = "not tested: an earlier-ranked member failed (Holm step-down)"
            alive = alive and ev.passed
            ev.settings["holm_rank"] = rank + 1
            final[idx] = ev
    for idx, ev in enumerate(final):
        ev.settings["holm_alpha"] = levels[idx]
    passed = all(ev.passed for ev in final)
    worst = min(final, key=_margin)
    ref = final[0]
    all_settings = dict(settings or {})
    all_settings.setdefault("alpha", alpha)
    all_settings["correction"] = f"Holm over {m} members" if m > 1 else "none (one member)"
    all_details = dict(details or {})
    all_details["members_passed"] = f"{sum(ev.passed for ev in final)} of {m}"
    all_details["worst_member"] = worst.claim
    return Evidence(
        claim=claim or " and ".join(ev.claim for ev in final),
        metric=metric or ref.metric,
        estimate=float(np.mean([ev.estimate for ev in final])),
        low=float(min(ev.low for ev in final)), high=float(max(ev.high for ev in final)),
        bound=float(ref.threshold + _margin(worst) * (1 if ref.alternative == "greater" else -1))
        if all(ev.threshold == ref.threshold and ev.alternative == ref.alternative for ev in final)
        else float(worst.bound),
        n=int(sum(ev.n for ev in final)), threshold=float(ref.threshold), alpha=float(alpha),
        alternative=ref.alternative, passed=passed,
        per_seed=[replace(s, label=f"{ev.claim}: {s.label}" if s.label else ev.claim)
                  for ev in final for s in ev.per_seed],
        settings=all_settings, model=dict(model_info or ref.model), details=all_details,
        family=final, figures=dict(figures or {}),
    )


def _margin(ev: Evidence) -> float:
    """How far the bound clears the threshold in the claim's direction (negative: fails)."""
    gap = ev.bound - ev.threshold
    margin = gap if ev.alternative == "greater" else -gap
    if not ev.passed and margin > 0:  # failed by Holm step-down although its bound clears
        return 0.0
    return float(margin)


def seeds_table(evidence: Iterable[Evidence]) -> str:
    """All rows of several evidences as one table (for messages and docs)."""
    return "\n".join(ev.table() for ev in evidence)
