"""Lens claims: a lens agrees with the model's output at a layer; a tuned lens beats the logit lens.

Measuring is apart from judging: :func:`~mi_assert.lens.measure.measure_lens` returns the
per-prompt data, ``check_*`` turns it into an :class:`~mi_assert.stats.evidence.Evidence`
without raising, ``assert_*`` = :func:`mi_assert.verdict.asserting` of it.

* :func:`check_lens_agreement`: at ``layer``, the lens's mean top-1 agreement exceeds
  ``min_top1`` and/or its mean ``KL(final || lens)`` stays below ``max_kl``. Each criterion is a
  member claim and both must hold (intersection-union, :func:`~mi_assert.stats.composite.all_of`):
  the headline is the deciding member, in its own units.
* :func:`check_tuned_lens_beats_logit_lens`: at each named layer, the per-prompt paired
  difference ``KL_logit - KL_tuned`` has a mean above ``min_gap``. One member per layer, combined
  as several heads are (:func:`~mi_assert.stats.composite.holm_family`: each layer a separate
  finding at its Holm level, family-wise error ``alpha``; the claim holds when every layer does).

Prompts are the units of the bootstrap: copies of a prompt count once and fewer than
``min_prompts`` distinct prompts are refused. A tuned lens trained on another model (its
unembedding hash differs) is used as given and reported in ``settings["lens_warning"]``.
Every evidence carries the lens's KL-per-layer profile (``"line"`` figures).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from mi_assert.errors import MiAssertInputError
from mi_assert.lens.measure import (
    LensArg,
    LensMeasurement,
    check_layers,
    measure_both,
    measure_lens,
    profile_of,
    resolve_lens,
)
from mi_assert.loading import resolve_model
from mi_assert.stats.bootstrap import Alternative
from mi_assert.stats.claims import DEFAULT_MIN_UNITS, ClaimSpec, check_threshold
from mi_assert.stats.composite import all_of, holm_family
from mi_assert.stats.evidence import Evidence
from mi_assert.stats.options import ClaimOptions, claim_options
from mi_assert.stats.statistic import Mean
from mi_assert.verdict import asserting

TOP1_METRIC = "top-1 agreement with the model's output (share of positions)"
KL_METRIC = "KL(final || lens) per position, nats"
GAP_METRIC = "KL_logit - KL_tuned per prompt, nats"
TOP1_RANGE = (0.0, 1.0)
KL_RANGE = (0.0, math.inf)

AGREEMENT_HINT = (
    "The lens does not reproduce the model's output at this layer. Look at the KL-per-layer "
    "profile in the figures: a later layer, or a tuned lens in place of the logit lens, may.")
BEATS_HINT = (
    "The tuned lens is not closer to the model's output than the logit lens here: it may be "
    "undertrained, trained on another model (see settings['lens_warning']), or the logit lens "
    "may already be near exact at this layer.")


def _options(seeds: Any, alpha: Any, n_resamples: Any, min_prompts: Any) -> ClaimOptions:
    return claim_options(seeds=(0,) if seeds is None else seeds, alpha=alpha,
                         n_resamples=n_resamples, min_prompts=min_prompts)


def _check_layer(handle: Any, layer: Any) -> int:
    if isinstance(layer, bool) or not isinstance(layer, (int, np.integer)):
        raise MiAssertInputError(f"layer must be an int in 0..{handle.n_layers - 1}; got {layer!r}")
    return check_layers(handle, int(layer))[0]


def _check_min_top1(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)) \
            or not 0.0 < float(value) < 1.0:
        raise MiAssertInputError(f"min_top1 must be a number in (0, 1) (a share of positions); "
                                 f"got {value!r}")
    return float(value)


def _check_max_kl(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)) \
            or not math.isfinite(float(value)) or float(value) <= 0.0:
        raise MiAssertInputError(f"max_kl must be a finite number > 0 (nats); got {value!r}")
    return float(value)


def _check_gap(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)) \
            or not math.isfinite(float(value)):
        raise MiAssertInputError(f"min_gap must be a finite number (nats); got {value!r}")
    return float(value)


def _profile_figures(measurements: dict[str, LensMeasurement], opts: ClaimOptions) -> dict[str, Any]:
    return profile_of(measurements, alpha=opts.alpha, n_resamples=opts.n_resamples).figures()


def check_lens_agreement(
    model: Any,
    layer: int,
    prompts: Any,
    lens: LensArg = "tuned",
    min_top1: float | None = None,
    max_kl: float | None = None,
    *,
    alpha: float = 0.05,
    seeds: Sequence[int] | int | None = None,
    n_resamples: int = 2000,
    min_prompts: int = DEFAULT_MIN_UNITS,
) -> Evidence:
    """Claim: at ``layer`` (``blocks.{layer}.hook_resid_post``) the lens reproduces the output.

    ``lens``: ``"tuned"`` (saved beside the checkpoint), ``"logit"`` or a
    :class:`~mi_assert.lens.translators.TunedLens`. Criteria (at least one):

    * ``min_top1`` in (0, 1): the mean over prompts of the share of non-BOS positions where the
      lens's argmax token is the model's exceeds it (lower bound);
    * ``max_kl`` > 0: the mean over prompts of the per-position ``KL(final || lens)`` (nats)
      stays below it (upper bound).

    With both, every criterion must hold at ``alpha`` and the deciding member is the headline.
    Bootstrap over prompts (distinct prompts: at least ``min_prompts``); ``seeds`` only add
    resamples on fixed prompts (one row). The lens's KL-per-layer profile is in the figures.
    """
    opts = _options(seeds, alpha, n_resamples, min_prompts)
    handle = resolve_model(model)
    layer = _check_layer(handle, layer)
    min_top1 = _check_min_top1(min_top1)
    max_kl = _check_max_kl(max_kl)
    if min_top1 is None and max_kl is None:
        raise MiAssertInputError("give at least one criterion: min_top1 (a share in (0, 1)) "
                                 "and/or max_kl (nats, > 0)")
    label, tuned = resolve_lens(handle, lens)
    measured = measure_lens(handle, prompts, lens=tuned if tuned is not None else "logit")
    j = measured.column(layer)
    settings = {**measured.settings, "layer": layer, "hook": f"blocks.{layer}.hook_resid_post",
                "n_prompts": measured.n_prompts, "seeds": list(opts.seeds),
                "n_resamples": opts.n_resamples}
    criteria: list[tuple[float | None, Alternative, str, str, tuple[float, float], Any]] = [
        (min_top1, "greater", f"top-1 agreement at layer {layer} exceeds {min_top1}",
         TOP1_METRIC, TOP1_RANGE, measured.top1),
        (max_kl, "less", f"KL to the output at layer {layer} is below {max_kl} nats",
         KL_METRIC, KL_RANGE, measured.kl)]
    members = [ClaimSpec(
        claim=f"{label} lens {wording}", metric=metric,
        samples={s: Mean(values[:, j], units=measured.units) for s in opts.seeds},
        threshold=check_threshold(bar, alternative, value_range, metric),
        alternative=alternative, n_resamples=opts.n_resamples, min_units=opts.min_prompts,
        value_range=value_range, settings=settings, model_info=measured.model_info,
        hint=AGREEMENT_HINT)
        for bar, alternative, wording, metric, value_range, values in criteria if bar is not None]
    per_layer_kl = ", ".join(f"L{lay}: {v:.4g}" for lay, v in
                             zip(measured.layers, measured.kl.mean(0), strict=True))
    per_layer_top1 = ", ".join(f"L{lay}: {v:.3f}" for lay, v in
                               zip(measured.layers, measured.top1.mean(0), strict=True))
    figures = _profile_figures({label: measured}, opts)
    return all_of(
        members, alpha=opts.alpha,
        claim=f"the {label} lens agrees with the model's output at layer {layer}",
        settings=settings, model_info=measured.model_info,
        details={"mean KL per layer": per_layer_kl, "mean top-1 per layer": per_layer_top1},
        figures=figures, hint=AGREEMENT_HINT)


assert_lens_agreement = asserting(check_lens_agreement)


def check_tuned_lens_beats_logit_lens(
    model: Any,
    layers: int | Sequence[int],
    prompts: Any,
    tuned_lens: LensArg = "tuned",
    min_gap: float = 0.0,
    *,
    alpha: float = 0.05,
    seeds: Sequence[int] | int | None = None,
    n_resamples: int = 2000,
    min_prompts: int = DEFAULT_MIN_UNITS,
) -> Evidence:
    """Claim: at each of ``layers`` the tuned lens is closer to the model's output than the
    logit lens: the mean over prompts of ``KL_logit - KL_tuned`` (per prompt, paired; nats)
    exceeds ``min_gap`` (lower bound).

    ``tuned_lens``: a :class:`~mi_assert.lens.translators.TunedLens` or ``"tuned"`` (saved
    beside the checkpoint). The last layer is refused: its resid_post *is* the model's final
    hidden state, where both lenses are exact. Several layers are a Holm family (as several
    heads are): each must pass at its Holm level. The KL-per-layer profiles of both lenses are
    in the figures.
    """
    opts = _options(seeds, alpha, n_resamples, min_prompts)
    handle = resolve_model(model)
    chosen = check_layers(handle, layers)
    last = handle.n_layers - 1
    if last in chosen:
        raise MiAssertInputError(
            f"layer {last} is the last layer: its resid_post is the model's final hidden state, "
            f"where the logit lens is already exact, so no lens can beat it there; name layers "
            f"in 0..{last - 1}")
    gap = _check_gap(min_gap)
    both = measure_both(handle, prompts, tuned_lens)
    logit, tuned = both["logit"], both["tuned"]
    settings = {**tuned.settings, "lens": "tuned vs logit", "layers": list(chosen),
                "n_prompts": tuned.n_prompts, "seeds": list(opts.seeds),
                "n_resamples": opts.n_resamples}
    members = []
    for layer in chosen:
        j = tuned.column(layer)
        diff = logit.kl[:, j] - tuned.kl[:, j]
        members.append(ClaimSpec(
            claim=f"tuned lens beats logit lens at layer {layer} by more than {gap:g} nats",
            metric=GAP_METRIC,
            samples={s: Mean(diff, units=tuned.units) for s in opts.seeds},
            threshold=gap, alternative="greater", n_resamples=opts.n_resamples,
            min_units=opts.min_prompts, settings={**settings, "layer": layer},
            model_info=tuned.model_info,
            details={"KL_logit": round(float(logit.kl[:, j].mean()), 6),
                     "KL_tuned": round(float(tuned.kl[:, j].mean()), 6)},
            hint=BEATS_HINT))
    figures = _profile_figures(both, opts)
    names = ", ".join(str(layer) for layer in chosen)
    claim = (f"the tuned lens beats the logit lens at layer{'s' if len(chosen) > 1 else ''} "
             f"{names}")
    details = {f"mean KL per layer ({lab})": ", ".join(
        f"L{lay}: {v:.4g}" for lay, v in zip(m.layers, m.kl.mean(0), strict=True))
        for lab, m in both.items()}
    return holm_family(members, alpha=opts.alpha, claim=claim, settings=settings,
                       model_info=tuned.model_info, details=details, figures=figures,
                       hint=BEATS_HINT)


assert_tuned_lens_beats_logit_lens = asserting(check_tuned_lens_beats_logit_lens)
