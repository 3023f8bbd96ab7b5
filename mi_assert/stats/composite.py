"""Composite claims: several member claims checked in one call, one rule for all families.

Members are claims in their own right (each a :class:`~mi_assert.stats.claims.ClaimSpec`
evaluated by the engine, or an already-made :class:`~mi_assert.stats.evidence.Evidence`).

**The rule.** A composite passes when every member passes.

* :func:`all_of` — *one claim with several criteria* (an SAE's explained variance **and** its
  L0 range; a probe's accuracy **and** its selectivity): an intersection–union test. Each
  member is tested at ``alpha``; the composite "every criterion holds" then has level
  ``alpha`` with no correction (Berger 1982), because it is rejected unless every member's
  null is.
* :func:`holm_family` — *several discoveries reported one by one* (each of several heads is an
  induction head; :func:`~mi_assert.heads.discovery.find_heads`): Holm's step-down keeps the
  family-wise error of the member verdicts at ``alpha``. Members are ordered by p-value, the
  member of rank r of m is re-read at ``alpha / (m - r)`` (its bound is the bound at that
  level, from the same resamples) and once one fails every later one is "not tested".

**The headline** of a composite is its **deciding member**: the failing member with the
worst standardised margin, else the passing member with the smallest standardised margin
(:func:`~mi_assert.stats.claims.standardised_margin`: the bound's distance beyond the
threshold in units of its distance from the estimate, so members in different units compare).
The composite's metric, estimate, interval, bound, threshold, direction and ``n`` are that
member's, in its units, so "bound X > threshold Y" is true exactly when it passed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from mi_assert.errors import MiAssertInputError
from mi_assert.stats.bootstrap import check_alpha
from mi_assert.stats.claims import ClaimSpec, standardised_margin
from mi_assert.stats.evidence import Evidence
from mi_assert.stats.multiple import holm_alphas

Member = ClaimSpec | Evidence


def member_margin(ev: Evidence) -> float:
    """Standardised margin of a member (``-inf`` when undefined or not tested)."""
    if ev.reason:
        return float("-inf")
    return standardised_margin(ev.bound, ev.estimate, ev.threshold, ev.alternative)


def deciding_member(members: Sequence[Evidence]) -> Evidence:
    failing = [m for m in members if not m.passed]
    pool = failing or list(members)
    # a member that failed with a bound beyond its threshold (Holm: not tested) never decides
    # while a member that failed on its own numbers exists
    real = [m for m in pool if not m.reason.startswith("not tested")] or pool
    return min(real, key=member_margin)


def _evaluate(member: Member, alpha: float) -> Evidence:
    if isinstance(member, ClaimSpec):
        return member.evaluate(alpha)
    if isinstance(member, Evidence):
        return member
    raise MiAssertInputError(f"a composite member must be a ClaimSpec or an Evidence; got {type(member).__name__}")


def _compose(claim: str, members: Sequence[Evidence], composite: str, alpha: float,
             settings: Mapping[str, Any] | None, model_info: Mapping[str, Any] | None,
             details: Mapping[str, Any] | None, figures: Mapping[str, Any] | None,
             hint: str) -> Evidence:
    decider = deciding_member(members)
    all_settings = dict(settings or {})
    all_settings.setdefault("alpha", alpha)
    all_settings["composite"] = composite
    all_details = dict(details or {})
    all_details["members_passed"] = f"{sum(m.passed for m in members)} of {len(members)}"
    all_details["deciding_member"] = decider.claim
    return Evidence(
        claim=claim, metric=decider.metric, estimate=decider.estimate, low=decider.low,
        high=decider.high, bound=decider.bound, n=decider.n, threshold=decider.threshold,
        alpha=decider.alpha, alternative=decider.alternative,
        passed=all(m.passed for m in members), reason=decider.reason if not decider.passed else "",
        per_seed=decider.per_seed, settings=all_settings,
        model=dict(model_info if model_info is not None else decider.model),
        details=all_details, family=tuple(members), figures=dict(figures or {}),
        unit=decider.unit, deciding=decider.claim, envelope=decider.envelope,
        composite=composite, hint=hint or decider.hint,
    )


def all_of(members: Sequence[Member], *, claim: str, alpha: float = 0.05,
           settings: Mapping[str, Any] | None = None, model_info: Mapping[str, Any] | None = None,
           details: Mapping[str, Any] | None = None,
           figures: Mapping[str, Any] | None = None, hint: str = "") -> Evidence:
    """Every member at ``alpha`` must pass (intersection–union; see the module docstring).

    A single member is returned as the claim itself (with the given description merged in).
    """
    alpha = check_alpha(alpha)
    if not members:
        raise MiAssertInputError("a composite claim needs at least one member")
    evaluated = [_evaluate(m, alpha) for m in members]
    if len(evaluated) == 1:
        return evaluated[0].with_context(claim=claim, settings=settings, model=model_info,
                                         details=details, figures=figures, hint=hint or None)
    return _compose(claim, evaluated, "all members (intersection-union)", alpha, settings,
                    model_info, details, figures, hint)


def holm_family(members: Sequence[ClaimSpec], *, claim: str, alpha: float = 0.05,
                settings: Mapping[str, Any] | None = None,
                model_info: Mapping[str, Any] | None = None,
                details: Mapping[str, Any] | None = None,
                figures: Mapping[str, Any] | None = None, hint: str = "") -> Evidence:
    """Holm step-down over members reported as separate discoveries (module docstring)."""
    alpha = check_alpha(alpha)
    if not members:
        raise MiAssertInputError("a family needs at least one member claim")
    if len(members) == 1:
        return all_of(members, claim=claim, alpha=alpha, settings=settings,
                      model_info=model_info, details=details, figures=figures, hint=hint)
    first = [m.evaluate(alpha) for m in members]
    m = len(members)
    order = sorted(range(m), key=lambda i: (float(first[i].details.get("p_value", 1.0)),
                                            -member_margin(first[i])))
    final: list[Evidence] = list(first)
    alive = True
    stopped_at = ""
    for rank, (idx, level) in enumerate(zip(order, holm_alphas(m, alpha), strict=True)):
        ev = first[idx] if level == alpha else members[idx].evaluate(level)
        ev = replace(ev, settings={**ev.settings, "holm_rank": rank + 1, "holm_alpha": level})
        if not alive:
            ev = replace(ev, passed=False,
                         reason=f"not tested: Holm step-down stopped at '{stopped_at}'")
        elif not ev.passed:
            alive = False
            stopped_at = ev.claim
        final[idx] = ev
    return _compose(claim, final, f"Holm over {m} members", alpha, settings, model_info,
                    details, figures, hint)
