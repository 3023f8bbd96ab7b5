"""Invariance (INV) and directional (DIR) claims: how a metric responds to a prompt transform.

Per prompt ``d = metric(transform(prompts)) - metric(prompts)``: the same prompt before and
after, so the comparison is paired and each prompt is one unit.

* **invariant** (two one-sided tests): the claim holds when ``mean d > -tolerance`` and
  ``mean d < +tolerance`` each pass at ``alpha`` (:func:`~mi_assert.stats.all_of`,
  intersection-union, so TOST has level ``alpha``). Failing to find a difference is not
  evidence of invariance; only a mean shift shown to lie inside ``±tolerance`` is.
* **directional**: one one-sided test, ``mean d > min_effect`` ("increase") or
  ``mean d < -min_effect`` ("decrease").

A metric named by string (``"logit_diff"``) is rebuilt from each prompt set's answers, so a
transform that moves the answers (:func:`~mi_assert.search.transforms.swap_answers`) is read
with them; a metric object reads its own answers on both prompt sets.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Sequence
from typing import Any

import numpy as np
import torch

from mi_assert.backends import ModelHandle
from mi_assert.causal.metrics import Metric, evaluate_metric, metric_for_prompts, metric_name
from mi_assert.errors import MiAssertInputError
from mi_assert.loading import resolve_model
from mi_assert.prompts import PromptSet
from mi_assert.search.transforms import Transform
from mi_assert.stats import ClaimSpec, Evidence, Mean, all_of
from mi_assert.verdict import asserting

DIRECTIONS: tuple[str, ...] = ("increase", "decrease")
DIFFERENCE = "per prompt d = metric(transform(prompts)) - metric(prompts)"

#: prompts as given: a prompt set, a token batch, or one of those per seed
PromptsLike = PromptSet | torch.Tensor | Callable[[int], PromptSet | torch.Tensor]


def as_prompt_set(prompts: Any) -> PromptSet:
    """A :class:`PromptSet`, or a token batch ``[batch, pos]`` as one (no answers)."""
    if isinstance(prompts, PromptSet):
        return prompts
    if isinstance(prompts, torch.Tensor) and prompts.ndim == 2 and not prompts.is_floating_point():
        return PromptSet(clean=prompts.long())
    shape = f" of shape {tuple(prompts.shape)}" if isinstance(prompts, torch.Tensor) else ""
    raise MiAssertInputError(
        f"prompts must be a PromptSet, an integer token batch [batch, pos], or a callable "
        f"seed -> either; got {type(prompts).__name__}{shape}")


def _transformed(transform: Transform, prompts: PromptSet) -> PromptSet:
    out = transform(prompts)
    if not isinstance(out, PromptSet):
        raise MiAssertInputError(
            f"transform {_transform_name(transform)} returned {type(out).__name__}; a transform "
            "must map a PromptSet to a PromptSet (see mi_assert.search.transforms)")
    if len(out) != len(prompts):
        raise MiAssertInputError(
            f"transform {_transform_name(transform)} turned {len(prompts)} prompts into "
            f"{len(out)}; differences are paired prompt by prompt, so it must keep every prompt")
    return out


def _reads_last_position(metric_fn: Any) -> bool:
    return isinstance(metric_fn, Metric) and metric_fn.positions is None and metric_fn.position == -1


def _check_aligned(transform: Transform, before: PromptSet, after: PromptSet,
                   metric_fn: Any) -> None:
    """Prompts of a new length are compared only by a metric that reads the last position:
    any other position (or per-prompt positions) would point at different tokens."""
    n_before, n_after = before.clean.shape[1], after.clean.shape[1]
    if n_before != n_after and not _reads_last_position(metric_fn):
        raise MiAssertInputError(
            f"transform {_transform_name(transform)} changed the prompt length from {n_before} "
            f"to {n_after} tokens, but metric {metric_name(metric_fn)} does not read the last "
            "position (-1), so it would read different tokens before and after; keep the "
            "length, or use a metric at position -1")


def _transform_name(transform: Any) -> str:
    return str(getattr(transform, "__name__", type(transform).__name__))


def _metric_values(handle: ModelHandle, metric_fn: Any, prompts: PromptSet) -> np.ndarray:
    logits = handle.forward(prompts.clean)
    return evaluate_metric(metric_fn, logits).double().cpu().numpy()


def _prompt_units(prompts: PromptSet) -> tuple[Hashable, ...]:
    # a repeated prompt (same tokens and answers) is one unit of the bootstrap, not two
    answers = [t.tolist() if t is not None else [None] * len(prompts)
               for t in (prompts.correct, prompts.wrong)]
    return tuple(zip(map(tuple, prompts.clean.tolist()), *answers, strict=True))


def paired_differences(model: Any, metric: Any, transform: Transform, prompts: Any
                       ) -> tuple[Mean, float, str]:
    """``d`` per prompt (module docstring) as the engine's mean over prompts, the mean metric
    before the transform, and the metric's name."""
    if not callable(transform):
        raise MiAssertInputError(
            f"transform must be a callable PromptSet -> PromptSet (e.g. "
            f"mi_assert.search.transforms.swap_answers()); got {type(transform).__name__}")
    handle = resolve_model(model)
    before = as_prompt_set(prompts)
    after = _transformed(transform, before)
    metric_before = metric_for_prompts(metric, before, model=handle)
    metric_after = metric_for_prompts(metric, after, model=handle)
    _check_aligned(transform, before, after, metric_after)
    base = _metric_values(handle, metric_before, before)
    d = _metric_values(handle, metric_after, after) - base
    return Mean(d, units=_prompt_units(before)), float(np.mean(base)), metric_name(metric_before)


def _seeded_prompts(prompts: Any, seeds: Sequence[int]) -> dict[int, Any]:
    if callable(prompts) and not isinstance(prompts, (PromptSet, torch.Tensor)):
        return {int(s): prompts(int(s)) for s in seeds}
    # fixed prompts: every seed holds the same data, and the engine merges such seeds
    return {int(s): prompts for s in seeds}


def _check_seeds(seeds: Any) -> tuple[int, ...]:
    ok = (isinstance(seeds, (list, tuple)) and len(seeds) > 0
          and all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) for s in seeds))
    if not ok:
        raise MiAssertInputError(f"seeds must be a non-empty list or tuple of ints; got {seeds!r}")
    return tuple(int(s) for s in seeds)


def _check_number(value: Any, name: str, *, strict: bool) -> float:
    ok = (not isinstance(value, bool) and isinstance(value, (int, float, np.floating))
          and math.isfinite(float(value)) and (float(value) > 0 if strict else float(value) >= 0))
    if not ok:
        raise MiAssertInputError(f"{name} must be a finite number {'>' if strict else '>='} 0 "
                                 f"(in the metric's units); got {value!r}")
    return float(value)


def _measure(model: Any, metric: Any, transform: Transform, prompts: Any, seeds: Sequence[int]
             ) -> tuple[ModelHandle, dict[int, Mean], dict[int, float], str]:
    handle = resolve_model(model)
    measured = {s: paired_differences(handle, metric, transform, p)
                for s, p in _seeded_prompts(prompts, seeds).items()}
    samples = {s: m[0] for s, m in measured.items()}
    baselines = {s: m[1] for s, m in measured.items()}
    return handle, samples, baselines, next(iter(measured.values()))[2]


def _settings(transform: Transform, metric: str, samples: dict[int, Mean]) -> dict[str, Any]:
    return {"transform": _transform_name(transform), "metric": metric,
            "n_prompts": {s: int(m.x.size) for s, m in samples.items()}, "difference": DIFFERENCE}


def _details(samples: dict[int, Mean], baselines: dict[int, float]) -> dict[str, Any]:
    return {"mean_d": {s: round(m.estimate(), 4) for s, m in samples.items()},
            "mean_metric_before": {s: round(b, 4) for s, b in baselines.items()}}


def _one_sided(transform: Transform, samples: dict[int, Mean], bound: float,
               alternative: str) -> ClaimSpec:
    sign = ">" if alternative == "greater" else "<"
    return ClaimSpec(
        claim=f"under {_transform_name(transform)}: mean d {sign} {bound:g}",
        metric="metric(transformed) - metric(original)", samples=dict(samples),
        threshold=bound, alternative=alternative,  # type: ignore[arg-type]
        hist_figure=False)


def check_invariant(
    model: Any,
    metric: Any,
    transform: Transform,
    prompts: PromptsLike,
    *,
    tolerance: float,
    seeds: Sequence[int] = (0,),
    alpha: float = 0.05,
) -> Evidence:
    """Claim: ``transform`` moves ``metric`` by less than ``tolerance`` on average over prompts,
    by two one-sided tests at ``alpha`` (module docstring). ``prompts``: a PromptSet, a token
    batch, or a callable ``seed -> prompts`` (fresh prompts per seed of ``seeds``; every seed
    must pass)."""
    tolerance = _check_number(tolerance, "tolerance", strict=True)
    seeds = _check_seeds(seeds)
    handle, samples, baselines, name = _measure(model, metric, transform, prompts, seeds)
    members = [_one_sided(transform, samples, -tolerance, "greater"),
               _one_sided(transform, samples, tolerance, "less")]
    return all_of(
        members,
        claim=f"{name} is invariant under {_transform_name(transform)} within ±{tolerance:g} "
              "(TOST)",
        alpha=alpha,
        settings={**_settings(transform, name, samples), "tolerance": tolerance,
                  "statistic": "mean d > -tolerance and mean d < +tolerance, each at alpha "
                               "(two one-sided tests)"},
        model_info=handle.describe(), details=_details(samples, baselines))


assert_invariant = asserting(check_invariant)


def _check_direction(direction: Any) -> str:
    if direction not in DIRECTIONS:
        raise MiAssertInputError(
            f"direction must be one of {', '.join(map(repr, DIRECTIONS))}; got {direction!r}")
    return str(direction)


def check_directional(
    model: Any,
    metric: Any,
    transform: Transform,
    prompts: PromptsLike,
    *,
    direction: str = "increase",
    min_effect: float = 0.0,
    seeds: Sequence[int] = (0,),
    alpha: float = 0.05,
) -> Evidence:
    """Claim: ``transform`` moves ``metric`` in ``direction`` by more than ``min_effect`` on
    average over prompts (``mean d > min_effect`` or ``mean d < -min_effect``), one one-sided
    test at ``alpha``; ``prompts`` as :func:`check_invariant` takes them."""
    direction = _check_direction(direction)
    min_effect = _check_number(min_effect, "min_effect", strict=False)
    seeds = _check_seeds(seeds)
    handle, samples, baselines, name = _measure(model, metric, transform, prompts, seeds)
    increase = direction == "increase"
    bound = min_effect if increase else -min_effect
    spec = _one_sided(transform, samples, bound, "greater" if increase else "less")
    return ClaimSpec(
        claim=f"{name} {direction}s under {_transform_name(transform)} by more than "
              f"{min_effect:g}",
        metric=spec.metric, samples=spec.samples, threshold=spec.threshold,
        alternative=spec.alternative, hist_figure=False,
        settings={**_settings(transform, name, samples), "direction": direction,
                  "min_effect": min_effect},
        model_info=handle.describe(), details=_details(samples, baselines),
    ).evaluate(alpha)


assert_directional = asserting(check_directional)


__all__ = ["DIRECTIONS", "PromptsLike", "as_prompt_set", "assert_directional",
           "assert_invariant", "check_directional", "check_invariant", "paired_differences"]
