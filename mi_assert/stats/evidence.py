"""Evidence: what a claim was, what was measured, and the verdict (immutable plain data).

Evidence is made only by the engine in :mod:`mi_assert.stats` (:func:`~mi_assert.stats.claims.
evaluate_claim`, :func:`~mi_assert.stats.composite.all_of`, :func:`~mi_assert.stats.composite.
holm_family`, :func:`~mi_assert.stats.claims.undefined_claim`) and checks its own invariants
when made, so every number it prints reads true:

* ``passed`` is exactly "``bound`` lies beyond ``threshold`` in the direction ``alternative``",
  unless ``reason`` says why not (an undefined statistic, a Holm step-down); the summary line
  prints the comparison that actually holds (``>``, ``<=`` ...), or the reason instead;
* ``low <= estimate <= high`` (undefined statistics carry NaN and a reason);
* the headline (``estimate``, ``low``, ``high``, ``bound``, ``n``, ``metric``, ``threshold``,
  ``alternative``) is one row's or one member's: the **deciding** one (``deciding`` names it).
  ``n`` is the number of independent units (``unit``) that row's bootstrap resampled;
  ``envelope`` is the range spanned by all rows' intervals, named as such.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

from mi_assert.comparison import fmt, relation, side

SCHEMA_VERSION = 2


class EvidenceInvariantError(AssertionError):
    """The engine tried to make an Evidence whose numbers contradict its verdict (a bug)."""


def _readonly(value: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(value or {}))


def _clears(bound: float, threshold: float, alternative: str) -> bool:
    return bool(bound > threshold if alternative == "greater" else bound < threshold)


def _in_interval(low: float, estimate: float, high: float) -> bool:
    return bool(low <= estimate <= high)


@dataclass(frozen=True)
class SeedResult:
    """One row: a sampling seed (and model seed, and condition ``label``) of one claim."""

    seed: int
    estimate: float
    low: float
    high: float
    bound: float
    n: int
    passed: bool
    p_value: float | None = None
    model_seed: int | None = None
    label: str = ""
    method: str = ""
    threshold: float | None = None
    alternative: str = "greater"

    def __post_init__(self) -> None:
        if self.threshold is not None and self.passed != _clears(self.bound, self.threshold,
                                                                 self.alternative):
            raise EvidenceInvariantError(f"row {self} passed={self.passed} contradicts its bound")
        if math.isfinite(self.estimate) and not _in_interval(self.low, self.estimate, self.high):
            raise EvidenceInvariantError(f"row {self}: estimate outside its interval")

    @property
    def name(self) -> str:
        name = f"seed {self.seed}"
        if self.model_seed is not None:
            name += f", model seed {self.model_seed}"
        return name + (f", {self.label}" if self.label else "")


_fmt = fmt


@dataclass(frozen=True)
class Evidence:
    """The record of one claim's check (see the module docstring for what each number means).

    ``per_seed`` has every row (seed × model seed × condition) of a single claim, ``family``
    every member of a composite claim (each an Evidence in its own units).
    """

    claim: str
    metric: str
    estimate: float
    low: float
    high: float
    bound: float
    n: int
    threshold: float
    alpha: float
    alternative: str
    passed: bool
    per_seed: tuple[SeedResult, ...] = ()
    settings: Mapping[str, Any] = field(default_factory=dict)
    model: Mapping[str, Any] = field(default_factory=dict)
    details: Mapping[str, Any] = field(default_factory=dict)
    family: tuple[Evidence, ...] = ()
    #: arrays people would rather look at (heatmaps, patterns); reports draw them, not in JSON.
    figures: Mapping[str, Any] = field(default_factory=dict, repr=False)
    #: why the verdict is not "bound clears threshold" (undefined statistic, Holm step-down)
    reason: str = ""
    unit: str = "prompts"
    #: which row or member the headline numbers come from
    deciding: str = ""
    #: (lowest low, highest high) over every row's interval; None for a single row
    envelope: tuple[float, float] | None = None
    #: "single" | "all members (intersection-union)" | "Holm"
    composite: str = "single"
    #: what to look at when the claim fails (e.g. the best-scoring heads of the role)
    hint: str = ""
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        for name in ("settings", "model", "details", "figures"):
            object.__setattr__(self, name, _readonly(getattr(self, name)))
        object.__setattr__(self, "per_seed", tuple(self.per_seed))
        object.__setattr__(self, "family", tuple(self.family))
        if self.alternative not in ("greater", "less"):
            raise EvidenceInvariantError(f"alternative {self.alternative!r}")
        if self.reason:
            if self.passed:
                raise EvidenceInvariantError(f"{self.claim}: a verdict with a reason must fail")
            return
        if self.passed != _clears(self.bound, self.threshold, self.alternative):
            raise EvidenceInvariantError(
                f"{self.claim}: passed={self.passed} but bound {self.bound} vs threshold "
                f"{self.threshold} ({self.alternative})")
        if not _in_interval(self.low, self.estimate, self.high):
            raise EvidenceInvariantError(
                f"{self.claim}: estimate {self.estimate} outside [{self.low}, {self.high}]")

    @property
    def verdict(self) -> str:
        return "PASS" if self.passed else "FAIL"

    @property
    def members(self) -> tuple[Evidence, ...]:
        """The members of a composite claim (empty for a single claim)."""
        return self.family

    def comparison(self) -> str:
        """``one-sided 95% lower bound 0.812 > threshold 0.400``: the relation that holds (or
        the reason instead, see :mod:`mi_assert.comparison`)."""
        text = relation(self.bound, self.threshold, self.alternative, self.reason)
        return text if self.reason else f"{side(self.alpha, self.alternative)} {text[len('bound '):]}"

    def summary_line(self) -> str:
        head = f"{self.claim}: "
        if self.family:
            head += f"deciding member '{self.deciding}': "
        line = (f"{head}{self.metric} = {_fmt(self.estimate)} [{_fmt(self.low)}, "
                f"{_fmt(self.high)}] (n={self.n} {self.unit}")
        if self.deciding and not self.family and self.envelope is not None:
            line += f", deciding row {self.deciding}"
        line += f"); {self.comparison()}: {self.verdict}"
        return line

    def table(self) -> str:
        lines = [self.summary_line()]
        if self.envelope is not None:
            lines.append(f"  range of all {len(self.per_seed)} row intervals: "
                         f"[{_fmt(self.envelope[0])}, {_fmt(self.envelope[1])}]")
        if self.model:
            lines.append("  model: " + ", ".join(f"{k}={v}" for k, v in self.model.items()))
        if self.per_seed and not self.family:
            lines.append("  seed  model_seed  estimate  interval            bound     n     verdict")
            for s in self.per_seed:
                ms = "-" if s.model_seed is None else str(s.model_seed)
                lines.append(f"  {s.seed:<5} {ms:<11} {s.estimate:8.3f}  [{s.low:7.3f}, {s.high:7.3f}]  "
                             f"{s.bound:8.3f}  {s.n:<5} {'pass' if s.passed else 'FAIL'}"
                             + (f"  {s.label}" if s.label else ""))
        for member in self.family:
            lines.append("  member " + member.summary_line())
        if self.settings:
            lines.append("  settings: " + ", ".join(f"{k}={v}" for k, v in self.settings.items()))
        for key, value in self.details.items():
            if isinstance(value, str) and "\n" in value:
                lines.append(f"  {key}:")
                lines += ["    " + ln for ln in value.splitlines()]
            else:
                lines.append(f"  {key}: {value}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "claim": self.claim, "metric": self.metric, "estimate": self.estimate,
            "low": self.low, "high": self.high, "bound": self.bound, "n": self.n,
            "unit": self.unit, "threshold": self.threshold, "alpha": self.alpha,
            "alternative": self.alternative, "passed": self.passed, "verdict": self.verdict,
            "reason": self.reason, "deciding": self.deciding, "composite": self.composite,
            "envelope": list(self.envelope) if self.envelope is not None else None,
            "hint": self.hint,
            "summary": self.summary_line(),
            "per_seed": [vars(s).copy() for s in self.per_seed],
            "settings": dict(self.settings), "model": dict(self.model),
            "details": dict(self.details), "family": [m.to_dict() for m in self.family],
            "schema_version": self.schema_version,
        }
        out: dict[str, Any] = _jsonable(d)
        return out

    def with_context(self, *, claim: str | None = None, settings: Mapping[str, Any] | None = None,
                     model: Mapping[str, Any] | None = None,
                     details: Mapping[str, Any] | None = None,
                     figures: Mapping[str, Any] | None = None,
                     hint: str | None = None) -> Evidence:
        """A copy with more description (settings/details/figures merged); numbers unchanged."""
        return replace(
            self, claim=self.claim if claim is None else claim,
            hint=self.hint if hint is None else hint,
            settings={**self.settings, **(settings or {})},
            model=dict(self.model) if model is None else dict(model),
            details={**self.details, **(details or {})},
            figures={**self.figures, **(figures or {})})

    def __repr__(self) -> str:
        return f"Evidence({self.summary_line()})"

    def __str__(self) -> str:
        return self.table()


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, (str, int, bool)) or obj is None:
        return obj
    try:  # numpy / torch scalars
        return _jsonable(obj.item())
    except (AttributeError, ValueError):
        return str(obj)
