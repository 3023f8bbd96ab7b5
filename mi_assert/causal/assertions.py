"""Causal assertions: activation patching recovery, ablation effects and path patching.

Each claim is measured first (``measure_*``: per-prompt metric values per seed, no verdict),
then judged by the engine: per seed a ratio of means over the prompts
(:class:`~mi_assert.stats.statistic.RatioOfMeans`, numerator and denominator resampled
together, identical prompts merged into one unit), every seed's one-sided bound must clear the
threshold (or ``quorum`` seeds) and the worst seed is the headline. ``check_*`` returns the
:class:`~mi_assert.stats.Evidence`; ``assert_*`` is ``check_*`` followed by
:func:`mi_assert.verdict.raise_if_failed` (``ClaimFailed`` with the table).

Denoising vs noising (Heimersheim & Nanda 2024):

* ``direction="denoise"``: run the **corrupted** prompts with the components' activations
  from the **clean** run. Tests *sufficiency*. Statistic: normalised recovery
  ``R = (mean(patched) - mean(corrupted)) / (mean(clean) - mean(corrupted))``;
  1 = the components restore the whole clean behaviour, 0 = nothing.
* ``direction="noise"``: run the **clean** prompts with the components' activations from the
  **corrupted** run. Tests *necessity*. Statistic: the drop
  ``D = (mean(clean) - mean(patched)) / (mean(clean) - mean(corrupted))``; 1 = corrupting the
  components alone destroys the whole effect, 0 = the effect survives.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor

from mi_assert.backends.base import EditFn, ModelHandle
from mi_assert.causal.components import (
    Component,
    check_positions,
    parse_component,
    parse_components,
)
from mi_assert.causal.draws import Draw, check_enough_prompts, prompt_draws, prompt_ids
from mi_assert.causal.interventions import (
    ABLATION_METHODS,
    ablation_sources,
    edits_for,
    patched_logits,
)
from mi_assert.causal.metrics import evaluate_metric, metric_name
from mi_assert.causal.recovery import RatioRow, check_gap, ratio_claim
from mi_assert.errors import MiAssertInputError
from mi_assert.loading import resolve_model
from mi_assert.stats import Evidence, RowKey
from mi_assert.stats.bootstrap import Alternative
from mi_assert.stats.claims import DEFAULT_MIN_UNITS, check_threshold
from mi_assert.stats.options import ClaimOptions, claim_options
from mi_assert.verdict import asserting

DEFAULT_MIN_RECOVERY = 0.5
DEFAULT_MIN_DROP = 0.5
#: distinct prompts (pairs) each seed's row needs
DEFAULT_MIN_PROMPTS = DEFAULT_MIN_UNITS

_RECOVERY_HINT = ("hint: denoising tests sufficiency; a component can be necessary (noising "
                  "drops the metric) without being sufficient on its own.")


def _threshold(lower: float | None, upper: float | None, lower_name: str, upper_name: str,
               default: float) -> tuple[float, Alternative]:
    if lower is not None and upper is not None:
        raise MiAssertInputError(f"give {lower_name} or {upper_name}, not both (a claim is one-sided)")
    if upper is not None:
        return check_threshold(upper, "less", None, upper_name), "less"
    value = default if lower is None else lower
    return check_threshold(value, "greater", None, lower_name), "greater"


def _metric_values(handle: ModelHandle, metric: Any, logits: Tensor) -> np.ndarray:
    return evaluate_metric(metric, logits, logits.shape[0]).detach().cpu().double().numpy()


def _labels(components: Sequence[Component]) -> str:
    return "+".join(c.label for c in components)


def _per_prompt_figure(values: list[np.ndarray], labels: list[str], xlabel: str, title: str,
                       threshold: float) -> dict[str, Any]:
    return {"kind": "hist", "data": values, "labels": labels, "xlabel": xlabel,
            "ylabel": "prompts", "title": title, "threshold": threshold}


# ----------------------------------------------------------------------------------------
# activation patching
# ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PatchingRun:
    """One seed's per-prompt metric values: clean run, corrupted run, patched run."""

    seed: int
    clean: np.ndarray
    corrupted: np.ndarray
    patched: np.ndarray
    #: one id per prompt pair (its token rows); identical pairs share an id
    units: tuple[Hashable, ...]

    def ratio_parts(self, direction: str) -> tuple[np.ndarray, np.ndarray]:
        """Per-prompt numerator and denominator of the normalised recovery (or drop)."""
        num = (self.patched - self.corrupted if direction == "denoise"
               else self.clean - self.patched)
        return num, self.clean - self.corrupted


@dataclass(frozen=True)
class PatchingMeasurement:
    """What :func:`measure_patching_recovery` measured (plain data, no verdict)."""

    direction: str
    components: tuple[str, ...]
    hooks: tuple[str, ...]
    positions: tuple[int, ...] | None
    metric: str
    source: str
    n_prompts: int
    runs: tuple[PatchingRun, ...]
    model: Mapping[str, Any] = field(default_factory=dict)


def _check_direction(direction: Any) -> None:
    if direction not in ("denoise", "noise"):
        raise MiAssertInputError(f"direction={direction!r}: allowed 'denoise' (clean into corrupted) or 'noise'")


def measure_patching_recovery(
    model: Any,
    clean: Any = None,
    corrupted: Any = None,
    components: Any = None,
    metric: Any = "logit_diff",
    *,
    prompts: Any = None,
    direction: Literal["denoise", "noise"] = "denoise",
    positions: Sequence[int] | int | None = None,
    seeds: Sequence[int] | int = (0,),
    prompt_kwargs: Mapping[str, Any] | None = None,
) -> PatchingMeasurement:
    """Per-prompt clean, corrupted and patched metric values per seed (arguments as in
    :func:`assert_patching_recovery`; no threshold, no verdict).

    With explicit prompts every seed shares one measurement (the seed varies only the
    bootstrap); with a generator each seed measures its own held-out draw.
    """
    handle = resolve_model(model)
    _check_direction(direction)
    if components is None:
        raise MiAssertInputError("components is required: the heads/sites to patch")
    comps = parse_components(handle, components)
    draws = prompt_draws(handle, clean, corrupted, prompts, metric, seeds, need_corrupted=True,
                         prompt_kwargs=prompt_kwargs)
    return _measure_patching(handle, comps, draws, direction, positions)


def _measure_patching(handle: ModelHandle, comps: Sequence[Component], draws: Sequence[Draw],
                      direction: str, positions: Sequence[int] | int | None) -> PatchingMeasurement:
    hooks = sorted({c.hook for c in comps})
    pos_list: list[int] | None = None
    measured: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    runs = []
    for draw in draws:
        clean_t, corr_t = draw.prompts.clean, draw.prompts.corrupted
        assert corr_t is not None
        pos_list = check_positions(positions, clean_t.shape[1])  # type: ignore[arg-type]
        if id(draw.prompts) not in measured:
            # the source run caches the patched hooks, the target run nothing; each run's
            # logits become metric values at once, so one [batch, pos, d_vocab] is held at a time
            source_t, target_t = (clean_t, corr_t) if direction == "denoise" else (corr_t, clean_t)
            with torch.no_grad():
                source_logits, source_cache = handle.run_with_cache(source_t, hooks)
                m_source = _metric_values(handle, draw.metric, source_logits)
                del source_logits
                target_logits, _ = handle.run_with_cache(target_t, ())
                m_target = _metric_values(handle, draw.metric, target_logits)
                del target_logits
                logits, _ = patched_logits(handle, target_t, comps, source_cache, pos_list)
                m_patched = _metric_values(handle, draw.metric, logits)
                del logits, source_cache
            m_clean, m_corr = (m_source, m_target) if direction == "denoise" else (m_target, m_source)
            measured[id(draw.prompts)] = (m_clean, m_corr, m_patched)
        m_clean, m_corr, m_patch = measured[id(draw.prompts)]
        runs.append(PatchingRun(draw.seed, m_clean, m_corr, m_patch,
                                prompt_ids(draw.prompts, pairs=True)))
    return PatchingMeasurement(
        direction=direction, components=tuple(c.label for c in comps), hooks=tuple(hooks),
        positions=None if pos_list is None else tuple(pos_list),
        metric=metric_name(draws[0].metric), source=draws[0].source,
        n_prompts=len(draws[0].prompts), runs=tuple(runs), model=handle.describe())


def check_patching_recovery(
    model: Any,
    clean: Any = None,
    corrupted: Any = None,
    components: Any = None,
    metric: Any = "logit_diff",
    *,
    prompts: Any = None,
    min_recovery: float | None = None,
    max_recovery: float | None = None,
    min_drop: float | None = None,
    max_drop: float | None = None,
    direction: Literal["denoise", "noise"] = "denoise",
    positions: Sequence[int] | int | None = None,
    seeds: Sequence[int] | int = (0,),
    quorum: int | float | None = None,
    prompt_kwargs: Mapping[str, Any] | None = None,
    alpha: float = 0.05,
    n_resamples: int = 2000,
    min_prompts: int = DEFAULT_MIN_PROMPTS,
) -> Evidence:
    """Claim: patching ``components`` recovers (denoise) or destroys (noise) the behaviour.

    Args:
        model: any model :func:`mi_assert.as_handle` accepts.
        clean, corrupted: aligned token batches (or strings / a PromptSet as ``clean``).
        components: heads (``(9, 9)``, ``"L9H9"``, ``"9.9"``; patched at ``attn.hook_z``, TL's
            head_out patching), sites (``"attn3"``, ``"mlp3"``, ``"resid_pre5"``,
            ``"resid_mid5"``, ``"resid_post5"``) or canonical hook names; all patched together.
        metric: ``metric(logits) -> Tensor[batch]`` or a name built from the prompts' answers.
        prompts: instead of clean/corrupted, a generator name (``"ioi"``,
            ``"induction_pairs"``): each seed draws fresh held-out prompts.
        min_recovery / max_recovery: denoising thresholds on R (default ``min_recovery=0.5``).
        min_drop / max_drop: noising thresholds on D (default ``min_drop=0.5``).
        direction: ``"denoise"`` (sufficiency) or ``"noise"`` (necessity); see module docstring.
        positions: patch only these sequence positions (default: all).
        seeds: bootstrap seeds with explicit prompts (the same data: one row, pooled resamples,
            one seed); prompt-draw seeds with a generator.
        quorum: how many seeds must pass (default all; the worst seed is the headline).
        alpha: one-sided level per seed.
        min_prompts: distinct prompt pairs each seed needs (identical pairs count once).
    """
    options = claim_options(seeds=seeds, quorum=quorum, alpha=alpha, n_resamples=n_resamples,
                            min_prompts=min_prompts)
    _check_direction(direction)
    if direction == "denoise":
        if min_drop is not None or max_drop is not None:
            raise MiAssertInputError("min_drop/max_drop apply to direction='noise'; for denoising use min_recovery/max_recovery")
        threshold, alternative = _threshold(min_recovery, max_recovery, "min_recovery", "max_recovery",
                                            DEFAULT_MIN_RECOVERY)
    else:
        if min_recovery is not None or max_recovery is not None:
            raise MiAssertInputError("min_recovery/max_recovery apply to direction='denoise'; for noising use min_drop/max_drop")
        threshold, alternative = _threshold(min_drop, max_drop, "min_drop", "max_drop", DEFAULT_MIN_DROP)
    handle = resolve_model(model)
    if components is None:
        raise MiAssertInputError("components is required: the heads/sites to patch")
    comps = parse_components(handle, components)
    draws = prompt_draws(handle, clean, corrupted, prompts, metric, options.seeds,
                         need_corrupted=True, prompt_kwargs=prompt_kwargs)
    check_enough_prompts(draws, options.min_prompts, pairs=True)
    m = _measure_patching(handle, comps, draws, direction, positions)
    evidence = judge_patching_recovery(m, threshold=threshold, alternative=alternative,
                                       options=options)
    return evidence if direction == "noise" else evidence.with_context(hint=_RECOVERY_HINT)


def judge_patching_recovery(m: PatchingMeasurement, *, threshold: float, alternative: Alternative,
                            options: ClaimOptions) -> Evidence:
    """The verdict on a :class:`PatchingMeasurement` (every seed one ratio-of-means row)."""
    rows: dict[RowKey, RatioRow] = {}
    per_prompt: list[np.ndarray] = []
    for run in m.runs:
        check_gap(run.clean, run.corrupted)
        num, den = run.ratio_parts(m.direction)
        rows[RowKey(run.seed)] = (num, den, run.units)
        per_prompt.append(num / float(np.mean(den)))
    stat = "normalised recovery" if m.direction == "denoise" else "normalised drop"
    cmp = ">" if alternative == "greater" else "<"
    label = "+".join(m.components)
    means = {k: [round(float(np.mean(getattr(r, k))), 4) for r in m.runs]
             for k in ("clean", "corrupted", "patched")}
    spec = ratio_claim(
        f"{m.direction} patching {label} gives {stat} {cmp} {threshold:g}",
        f"{stat} of {m.metric}", rows, threshold=threshold, alternative=alternative,
        options=options,
        settings={"direction": m.direction, "components": list(m.components),
                  "hooks": list(m.hooks),
                  "positions": "all" if m.positions is None else list(m.positions),
                  "metric": m.metric, "prompts": m.source, "n_prompts": m.n_prompts,
                  "statistic": "(patched - corrupted)/(clean - corrupted)" if m.direction == "denoise"
                  else "(clean - patched)/(clean - corrupted)"},
        model_info=m.model,
        details={"mean_metric_per_seed": means},
        figures={"per_prompt": _per_prompt_figure(per_prompt, [f"seed {r.seed}" for r in m.runs],
                                                  f"per-prompt {stat} (over the mean gap)",
                                                  f"{m.direction} patching {label}", threshold)},
    )
    return spec.evaluate(options.alpha)


assert_patching_recovery = asserting(check_patching_recovery)


# ----------------------------------------------------------------------------------------
# ablation
# ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class AblationRun:
    """One seed's per-prompt metric values with and without the ablation."""

    seed: int
    full: np.ndarray
    ablated: np.ndarray
    #: one id per prompt (its token row); identical prompts share an id
    units: tuple[Hashable, ...]


@dataclass(frozen=True)
class AblationMeasurement:
    """What :func:`measure_ablation_effect` measured (plain data, no verdict)."""

    method: str
    components: tuple[str, ...]
    reference: str
    positions: tuple[int, ...] | None
    metric: str
    source: str
    n_prompts: int
    noise_scale: float
    runs: tuple[AblationRun, ...]
    model: Mapping[str, Any] = field(default_factory=dict)


def _check_method(method: Any) -> None:
    if method not in ABLATION_METHODS:
        raise MiAssertInputError(f"method={method!r} unknown; allowed: {', '.join(ABLATION_METHODS)}")


def measure_ablation_effect(
    model: Any,
    prompts: Any,
    components: Any,
    metric: Any = "logit_diff",
    method: Literal["mean", "zero", "resample", "noise"] = "mean",
    *,
    reference: Any = None,
    noise_scale: float = 1.0,
    positions: Sequence[int] | int | None = None,
    seeds: Sequence[int] | int = (0,),
    prompt_kwargs: Mapping[str, Any] | None = None,
) -> AblationMeasurement:
    """Per-prompt metric values with and without the ablation, per seed (arguments as in
    :func:`assert_ablation_effect`; no threshold, no verdict)."""
    handle = resolve_model(model)
    _check_method(method)
    comps = parse_components(handle, components)
    draws = prompt_draws(handle, None, None, prompts, metric, seeds, need_corrupted=False,
                         prompt_kwargs=prompt_kwargs)
    return _measure_ablation(handle, comps, draws, method, reference, noise_scale, positions)


def _measure_ablation(handle: ModelHandle, comps: Sequence[Component], draws: Sequence[Draw],
                      method: str, reference: Any, noise_scale: float,
                      positions: Sequence[int] | int | None) -> AblationMeasurement:
    if (isinstance(noise_scale, bool) or not isinstance(noise_scale, (int, float, np.number))
            or not np.isfinite(noise_scale) or noise_scale <= 0):
        raise MiAssertInputError(
            f"noise_scale must be a positive number (the noise std in units of the "
            f"activation's std); got {noise_scale!r}")
    pos_list: list[int] | None = None
    # mean and zero ablations are not seeded: draws sharing one PromptSet share one measurement
    measured: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    runs = []
    for draw in draws:
        tokens = draw.prompts.clean
        pos_list = check_positions(positions, tokens.shape[1])  # type: ignore[arg-type]
        memo_key = id(draw.prompts) if method in ("mean", "zero") else None
        if memo_key is None or memo_key not in measured:
            ref = _reference_tokens(handle, draw, reference)
            with torch.no_grad():
                sources = ablation_sources(handle, tokens, comps, method, ref, seed=draw.seed,
                                           noise_scale=noise_scale)
                full = _metric_values(handle, draw.metric, handle.forward(tokens))
                logits, _ = handle.run_with_edits(tokens, edits_for(comps, sources, pos_list))
            pair = (full, _metric_values(handle, draw.metric, logits))
            if memo_key is not None:
                measured[memo_key] = pair
        else:
            pair = measured[memo_key]
        runs.append(AblationRun(draw.seed, pair[0], pair[1], prompt_ids(draw.prompts, pairs=False)))
    return AblationMeasurement(
        method=method, components=tuple(c.label for c in comps),
        reference=_reference_name(reference),
        positions=None if pos_list is None else tuple(pos_list),
        metric=metric_name(draws[0].metric), source=draws[0].source,
        n_prompts=len(draws[0].prompts), noise_scale=float(noise_scale), runs=tuple(runs),
        model=handle.describe())


def check_ablation_effect(
    model: Any,
    prompts: Any,
    components: Any,
    metric: Any = "logit_diff",
    method: Literal["mean", "zero", "resample", "noise"] = "mean",
    *,
    min_drop: float | None = None,
    max_drop: float | None = None,
    reference: Any = None,
    noise_scale: float = 1.0,
    positions: Sequence[int] | int | None = None,
    seeds: Sequence[int] | int = (0,),
    quorum: int | float | None = None,
    prompt_kwargs: Mapping[str, Any] | None = None,
    alpha: float = 0.05,
    n_resamples: int = 2000,
    min_prompts: int = DEFAULT_MIN_PROMPTS,
) -> Evidence:
    """Claim: ablating ``components`` drops the metric by at least ``min_drop`` (or less than
    ``max_drop``) of its value.

    Statistic: the relative drop ``(mean(metric) - mean(ablated metric)) / mean(metric)`` over
    the prompts (ratio of means, paired bootstrap). Default ``min_drop=0.5``.

    ``method``:
        * ``"mean"``: each component's activation is replaced by its mean over ``reference``
          prompts, per position (default reference: the prompt batch itself; pass token ids,
          a PromptSet, or ``"corrupted"`` to use the PromptSet's corrupted prompts, e.g.
          Wang et al.'s ABC distribution for IOI);
        * ``"zero"``: replaced by zeros;
        * ``"resample"``: replaced by the activation on another prompt of ``reference``
          (seeded permutation with no fixed points; the seed is each claim seed);
        * ``"noise"``: Gaussian noise added with std ``noise_scale`` × the activation's std.
    ``prompts``: token ids, strings, a PromptSet (its clean prompts are used), or a generator
    name (fresh held-out prompts per seed). ``quorum``, ``alpha``, ``min_prompts`` as in
    :func:`assert_patching_recovery`.
    """
    options = claim_options(seeds=seeds, quorum=quorum, alpha=alpha, n_resamples=n_resamples,
                            min_prompts=min_prompts)
    _check_method(method)
    threshold, alternative = _threshold(min_drop, max_drop, "min_drop", "max_drop", DEFAULT_MIN_DROP)
    handle = resolve_model(model)
    comps = parse_components(handle, components)
    draws = prompt_draws(handle, None, None, prompts, metric, options.seeds, need_corrupted=False,
                         prompt_kwargs=prompt_kwargs)
    check_enough_prompts(draws, options.min_prompts, pairs=False)
    m = _measure_ablation(handle, comps, draws, method, reference, noise_scale, positions)
    rows: dict[RowKey, RatioRow] = {}
    per_prompt = []
    for run in m.runs:
        check_gap(run.full, np.zeros_like(run.full), what="metric (ablation drop is relative to it; its")
        rows[RowKey(run.seed)] = (run.full - run.ablated, run.full, run.units)
        per_prompt.append((run.full - run.ablated) / float(np.mean(run.full)))
    cmp = ">" if alternative == "greater" else "<"
    label = "+".join(m.components)
    spec = ratio_claim(
        f"{method}-ablating {label} drops {m.metric} by {cmp} {threshold:g} of it",
        f"relative drop of {m.metric}", rows, threshold=threshold, alternative=alternative,
        options=options,
        settings={"ablation": method, "reference": m.reference,
                  "components": list(m.components), "metric": m.metric,
                  "prompts": m.source, "n_prompts": m.n_prompts,
                  "statistic": "(metric - ablated)/metric (ratio of means)",
                  **({"noise_scale": m.noise_scale} if method == "noise" else {})},
        model_info=m.model,
        figures={"per_prompt": _per_prompt_figure(per_prompt, [f"seed {r.seed}" for r in m.runs],
                                                  "per-prompt drop (over the mean metric)",
                                                  f"{method}-ablation of {label}", threshold)},
    )
    return spec.evaluate(options.alpha)


assert_ablation_effect = asserting(check_ablation_effect)


def _reference_tokens(handle: ModelHandle, draw: Draw, reference: Any) -> Tensor | None:
    from mi_assert.prompts import PromptSet

    if reference is None:
        return None
    if isinstance(reference, str):
        if reference == "corrupted":
            if draw.prompts.corrupted is None:
                raise MiAssertInputError("reference='corrupted' but the prompts have no corrupted set")
            return draw.prompts.corrupted
        if reference == "clean":
            return draw.prompts.clean
        raise MiAssertInputError(f"reference={reference!r}: allowed None, 'clean', 'corrupted', token ids or a PromptSet")
    if isinstance(reference, PromptSet):
        return handle.to_tokens(reference.clean)
    return handle.to_tokens(reference)


def _reference_name(reference: Any) -> str:
    if reference is None:
        return "the prompt batch"
    if isinstance(reference, str):
        return f"the {reference} prompts"
    return "given reference prompts"


# ----------------------------------------------------------------------------------------
# path patching
# ----------------------------------------------------------------------------------------
RECEIVER_INPUTS: tuple[str, ...] = ("q", "k", "v", "resid")


def path_patched_logits(
    handle: ModelHandle,
    clean: Tensor,
    corrupted: Tensor,
    sender: Component,
    receivers: Sequence[Component] | Literal["logits"],
    receiver_input: str,
) -> Tensor:
    """Logits of the corrupted run where only the sender → receivers path carries clean input.

    Wang et al. (2022) path patching:

    1. Run the corrupted prompts with the sender's activation taken from the clean run while
       every other attention head (``attn.hook_z``) and MLP (``hook_mlp_out``) is frozen to its
       corrupted value, so the sender's change reaches later layers only through the residual
       stream directly. Record the receivers' inputs: their ``hook_q``/``hook_k``/``hook_v`` at
       their heads (``"resid"``: all three, i.e. the head's whole input), or the final residual
       stream when ``receivers == "logits"`` (the sender's direct effect).
    2. Run the corrupted prompts again with only those receiver inputs patched in.
    """
    n_layers = handle.n_layers
    freeze_hooks = [f"blocks.{layer}.attn.hook_z" for layer in range(n_layers)]
    if handle.has_mlp:
        freeze_hooks += [f"blocks.{layer}.hook_mlp_out" for layer in range(n_layers)]
    _, clean_cache = handle.run_with_cache(clean, [sender.hook])
    _, corr_cache = handle.run_with_cache(corrupted, freeze_hooks)
    sender_src = clean_cache[sender.hook]
    edits: dict[str, list[EditFn]] = {}
    for hook in freeze_hooks:
        frozen = corr_cache[hook]
        if hook == sender.hook:
            edits[hook] = [_sender_edit(frozen, sender_src, sender.head)]
        else:
            def frozen_edit(act: Tensor, _f: Tensor = frozen) -> Tensor:
                return _f.to(act.dtype)

            edits[hook] = [frozen_edit]
    if sender.hook not in edits:  # a residual-stream sender (e.g. resid_pre2, embed)
        edits[sender.hook] = [_sender_edit(None, sender_src, sender.head)]
    if receivers == "logits":
        logits, _ = handle.run_with_edits(corrupted, edits)
        return logits
    kinds = ("q", "k", "v") if receiver_input == "resid" else (receiver_input,)
    capture = sorted({f"blocks.{r.layer}.attn.hook_{k}" for r in receivers for k in kinds})
    _, captured = handle.run_with_edits(corrupted, edits, capture)
    patch_edits: dict[str, list[EditFn]] = {}
    for r in receivers:
        for k in kinds:
            hook = f"blocks.{r.layer}.attn.hook_{k}"
            comp = Component(hook, r.layer, r.head)
            patch_edits.setdefault(hook, []).extend(edits_for([comp], {comp: captured[hook]})[hook])
    logits, _ = handle.run_with_edits(corrupted, patch_edits)
    return logits


def _sender_edit(frozen: Tensor | None, source: Tensor, head: int | None) -> EditFn:
    def edit(act: Tensor) -> Tensor:
        out = (frozen if frozen is not None else act).to(act.dtype).clone()
        if head is None:
            out = source.to(act.dtype).clone()
        else:
            out[:, :, head] = source[:, :, head].to(act.dtype)
        return out

    return edit


def _parse_receivers(handle: ModelHandle, sender: Component, receivers: Any
                     ) -> list[Component] | Literal["logits"]:
    if isinstance(receivers, str) and receivers == "logits":
        return "logits"
    comps = parse_components(handle, receivers)
    for r in comps:
        if not r.is_head or not r.hook.endswith("attn.hook_z"):
            raise MiAssertInputError(
                f"receiver {r.label!r}: receivers must be attention heads (their q/k/v inputs are "
                "patched) or the string 'logits' (the sender's direct effect)"
            )
        if sender.layer is not None and r.layer is not None and r.layer <= sender.layer and \
                sender.hook != "hook_embed" and sender.hook != "hook_pos_embed":
            raise MiAssertInputError(
                f"receiver {r.label} is in layer {r.layer}, not after the sender {sender.label} "
                f"(layer {sender.layer}): there is no path from the sender to it"
            )
    return comps


def check_path_patching(
    model: Any,
    clean: Any = None,
    corrupted: Any = None,
    sender: Any = None,
    receivers: Any = None,
    receiver_input: Literal["q", "k", "v", "resid"] = "resid",
    metric: Any = "logit_diff",
    *,
    prompts: Any = None,
    min_recovery: float | None = None,
    max_recovery: float | None = None,
    seeds: Sequence[int] | int = (0,),
    quorum: int | float | None = None,
    prompt_kwargs: Mapping[str, Any] | None = None,
    alpha: float = 0.05,
    n_resamples: int = 2000,
    min_prompts: int = DEFAULT_MIN_PROMPTS,
) -> Evidence:
    """Claim: the effect that flows from ``sender`` to ``receivers`` (through
    ``receiver_input``) recovers at least ``min_recovery`` (or less than ``max_recovery``) of the
    clean-corrupted metric gap.

    Statistic: ``(mean(path patched) - mean(corrupted)) / (mean(clean) - mean(corrupted))``
    (denoising: the clean sender's effect, routed only through the named path, into the
    corrupted run; see :func:`path_patched_logits`). Default ``min_recovery=0.5``.
    ``sender``: a head or a site (``"mlp2"``, ``"resid_pre1"``...); ``receivers``: heads, or
    ``"logits"`` for the sender's direct effect on the output. ``seeds``, ``quorum``,
    ``alpha``, ``min_prompts`` as in :func:`assert_patching_recovery`.
    """
    options = claim_options(seeds=seeds, quorum=quorum, alpha=alpha, n_resamples=n_resamples,
                            min_prompts=min_prompts)
    if receiver_input not in RECEIVER_INPUTS:
        raise MiAssertInputError(f"receiver_input={receiver_input!r}: allowed {', '.join(RECEIVER_INPUTS)}")
    if sender is None or receivers is None:
        raise MiAssertInputError("sender and receivers are required")
    threshold, alternative = _threshold(min_recovery, max_recovery, "min_recovery", "max_recovery",
                                        DEFAULT_MIN_RECOVERY)
    handle = resolve_model(model)
    snd = parse_component(handle, sender)
    rcv = _parse_receivers(handle, snd, receivers)
    draws = prompt_draws(handle, clean, corrupted, prompts, metric, options.seeds,
                         need_corrupted=True, prompt_kwargs=prompt_kwargs)
    check_enough_prompts(draws, options.min_prompts, pairs=True)
    rows: dict[RowKey, RatioRow] = {}
    # draws of explicit prompts share one PromptSet: the seed varies only the bootstrap
    measured: dict[int, RatioRow] = {}
    for draw in draws:
        clean_t, corr_t = draw.prompts.clean, draw.prompts.corrupted
        assert corr_t is not None
        if id(draw.prompts) not in measured:
            with torch.no_grad():
                m_clean = _metric_values(handle, draw.metric, handle.forward(clean_t))
                m_corr = _metric_values(handle, draw.metric, handle.forward(corr_t))
                check_gap(m_clean, m_corr)
                logits = path_patched_logits(handle, clean_t, corr_t, snd, rcv, receiver_input)
            m_path = _metric_values(handle, draw.metric, logits)
            measured[id(draw.prompts)] = (m_path - m_corr, m_clean - m_corr,
                                          prompt_ids(draw.prompts, pairs=True))
        rows[RowKey(draw.seed)] = measured[id(draw.prompts)]
    rlabel = "logits" if rcv == "logits" else _labels(rcv)
    cmp = ">" if alternative == "greater" else "<"
    via = "" if rcv == "logits" else f" via {receiver_input}"
    spec = ratio_claim(
        f"path {snd.label} -> {rlabel}{via} recovers {cmp} {threshold:g}",
        f"path-patching recovery of {metric_name(draws[0].metric)}", rows, threshold=threshold,
        alternative=alternative, options=options,
        settings={"sender": snd.label, "receivers": rlabel, "receiver_input": receiver_input,
                  "frozen": "all other heads (hook_z) and MLPs (hook_mlp_out) at corrupted values",
                  "metric": metric_name(draws[0].metric), "prompts": draws[0].source,
                  "n_prompts": len(draws[0].prompts)},
        model_info=handle.describe(),
    )
    return spec.evaluate(options.alpha)


assert_path_patching = asserting(check_path_patching)


