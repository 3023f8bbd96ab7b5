"""Evidence: what a claim was, what was measured, and the verdict.

Every assertion returns an :class:`Evidence` on success and raises ``AssertionError`` carrying
the same evidence (``err.evidence``) on failure. Evidence is plain data (JSON-serialisable via
:meth:`Evidence.to_dict`) so reports and baselines can store it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from mi_assert.stats.bootstrap import BootstrapResult

SCHEMA_VERSION = 1


@dataclass
class SeedResult:
    """One seed's measurement (sampling seed, and model seed where the zoo has them)."""

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

    @classmethod
    def from_bootstrap(cls, seed: int, res: BootstrapResult, passed: bool | None = None,
                       model_seed: int | None = None, label: str = "") -> SeedResult:
        return cls(seed=seed, estimate=res.estimate, low=res.low, high=res.high,
                   bound=res.bound, n=res.n, p_value=res.p_value,
                   passed=res.passes() if passed is None else passed,
                   model_seed=model_seed, label=label)


@dataclass
class Evidence:
    """The record of one claim's check.

    ``estimate`` and ``[low, high]`` summarise the claim across seeds (the worst seed's one-
    sided ``bound`` is what the verdict uses); ``per_seed`` has each seed's row. ``threshold``
    is compared against ``bound`` in the direction ``alternative`` ("greater": bound must be
    above; "less": below).
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
    per_seed: list[SeedResult] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    model: dict[str, Any] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    family: list[Evidence] = field(default_factory=list)
    #: arrays people would rather look at (heatmaps, patterns); reports draw them, not stored in JSON.
    figures: dict[str, Any] = field(default_factory=dict, repr=False)
    schema_version: int = SCHEMA_VERSION

    @property
    def verdict(self) -> str:
        return "PASS" if self.passed else "FAIL"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("figures", None)
        d["family"] = [f.to_dict() for f in self.family]
        d["verdict"] = self.verdict
        return _jsonable(d)

    def summary_line(self) -> str:
        cmp = ">" if self.alternative == "greater" else "<"
        return (f"{self.claim}: {self.metric} = {self.estimate:.3f} "
                f"[{self.low:.3f}, {self.high:.3f}] (n={self.n}); one-sided "
                f"{100 * (1 - self.alpha):.0f}% bound {self.bound:.3f} {cmp} threshold "
                f"{self.threshold:.3f}? {self.verdict}")

    def table(self) -> str:
        lines = [self.summary_line()]
        if self.model:
            lines.append("  model: " + ", ".join(f"{k}={v}" for k, v in self.model.items()))
        if self.per_seed:
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

    def __repr__(self) -> str:
        return f"Evidence({self.summary_line()})"

    def __str__(self) -> str:
        return self.table()


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
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


class ClaimFailed(AssertionError):
    """An AssertionError that carries its :class:`Evidence`."""

    def __init__(self, message: str, evidence: Evidence) -> None:
        super().__init__(message)
        self.evidence = evidence


def fail(evidence: Evidence, hint: str = "") -> None:
    """Raise :class:`ClaimFailed` with the evidence table and an optional hint."""
    __tracebackhide__ = True
    message = "claim does not hold\n" + evidence.table()
    if hint:
        message += "\n" + hint
    raise ClaimFailed(message, evidence)


def raise_if_failed(evidence: Evidence, hint: str = "") -> Evidence:
    """Record the evidence for reports, then return it or raise ``AssertionError``."""
    __tracebackhide__ = True
    from mi_assert.record import record

    record(evidence)
    if not evidence.passed:
        fail(evidence, hint)
    return evidence
