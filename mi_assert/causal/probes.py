"""Readout claims: a linear probe decodes a property from an activation, beyond a control.

Protocol
--------
1. Activations at ``hook`` (position axis first, trailing axes flattened: per-head hooks give
   ``n_heads * d_head`` features) at the selected positions, one example per (prompt, position)
   with a label (labels < 0 mark positions without one).
2. Prompts are split into fit and held-out prompts (seeded; or pass a ``SplitPrompts`` whose
   held-out prompts come from an unseen seed). Features are standardised with fit statistics.
3. Probe: a closed-form ridge classifier (one-vs-rest least squares on +-1 targets, float64,
   penalty ``l2`` per example): one linear solve, deterministic. (An iterative logistic probe
   was 100x slower on a busy 2-core machine for the same held-out accuracy on the planted model.)
4. Control task, the same probe trained on relabelled data and scored on held-out prompts:

   * ``"shuffle"`` (default): labels randomly reassigned across examples (seeded), separately in
     the fit and held-out sets. What a probe reaches when labels carry no information the
     features could hold: an empirical chance level that includes the probe's overfitting.
   * ``"type"``: Hewitt & Liang (2019) control task: every token type (the token at the probed
     position) gets a random label drawn from the fit labels' distribution, the same in both
     sets. Selectivity against it asks whether the probe reads more than token identity; note
     that wherever the activation encodes the current token linearly (any residual stream of a
     small-vocabulary model), this control is itself nearly perfectly decodable.

Claim: on held-out prompts, (a) the mean per-prompt accuracy's lower bound exceeds chance (the
majority fit label's rate) and ``min_accuracy`` if given, and (b) the mean per-prompt
selectivity (accuracy minus control accuracy) has its lower bound above ``min_selectivity``.
Both are one-sided bootstrap tests over held-out prompts (units by token row) that must both
pass (:func:`mi_assert.stats.all_of`, intersection-union at ``alpha``); the headline is the
deciding member in its own metric and against its own threshold.

:func:`measure_probe_accuracy` measures (per seed: split, fit, per-prompt accuracies),
:func:`check_probe_accuracy` judges without raising, :func:`assert_probe_accuracy` raises.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
import torch
from torch import Tensor

from mi_assert.backends import ModelHandle
from mi_assert.causal._readout_inputs import (
    check_threshold_option,
    model_seed_of,
    prompt_units,
    readout_options,
    resolve_seeds,
)
from mi_assert.errors import MiAssertInputError
from mi_assert.loading import resolve_model
from mi_assert.stats import DEFAULT_MIN_UNITS, ClaimOptions, ClaimSpec, Evidence, Mean, all_of
from mi_assert.verdict import asserting

CONTROLS = ("shuffle", "type")
#: the range of a held-out accuracy and of a selectivity (accuracy minus control accuracy)
ACCURACY_RANGE = (0.0, 1.0)
SELECTIVITY_RANGE = (-1.0, 1.0)
Labels = Tensor | np.ndarray | Sequence[Any]


@dataclass
class ProbeData:
    """Examples of one split: features ``[n, F]``, labels ``[n]``, the prompt and token of each."""

    features: Tensor
    labels: Tensor
    prompt: Tensor
    token: Tensor


@dataclass
class ProbeResult:
    """One seed's held-out per-prompt accuracies of the probe and of its control (numpy,
    aligned with ``units``, the held-out prompts' token rows)."""

    accuracy: np.ndarray
    control_accuracy: np.ndarray
    chance: np.ndarray
    fit_accuracy: float
    n_classes: int
    n_fit: int
    n_heldout: int
    units: list[tuple[int, ...]] = field(default_factory=list)

    @property
    def selectivity(self) -> np.ndarray:
        """Per held-out prompt: probe accuracy minus control accuracy."""
        return self.accuracy - self.control_accuracy


@dataclass
class ProbeMeasurement:
    """What :func:`measure_probe_accuracy` measured: one :class:`ProbeResult` per seed."""

    hook: str
    control: str
    per_seed: dict[int, ProbeResult]
    split: str

    @property
    def chance(self) -> float:
        """The highest chance level (majority fit label's held-out rate) over the seeds."""
        return max(float(r.chance.mean()) for r in self.per_seed.values())


def _positions(position: Any, n_pos: int) -> list[int]:
    if position is None:
        return list(range(n_pos))
    if isinstance(position, range):
        position = list(position)
    items = [position] if isinstance(position, (int, np.integer)) and not isinstance(position, bool) else position
    if not isinstance(items, (list, tuple)) or not items:
        raise MiAssertInputError(
            f"position must be an int, a non-empty list/range of ints, or None (all); got {position!r}")
    out = []
    for p in items:
        if isinstance(p, bool) or not isinstance(p, (int, np.integer)) or not -n_pos <= p < n_pos:
            raise MiAssertInputError(
                f"position {p!r} is out of range for prompts of {n_pos} tokens "
                f"(allowed ints {-n_pos}..{n_pos - 1})")
        out.append(int(p) % n_pos)
    if len(set(out)) != len(out):
        raise MiAssertInputError(f"position lists a position twice: {items}")
    return out


def _labels_at(labels: Labels, tokens: Tensor, positions: list[int], single: bool, what: str) -> Tensor:
    """Labels ``[batch]`` (one position), ``[batch, n_selected]`` or ``[batch, n_pos]`` → ``[batch, n_selected]``."""
    lab = torch.as_tensor(labels.detach().cpu() if isinstance(labels, Tensor) else np.asarray(labels))
    if lab.is_floating_point() or lab.dtype == torch.bool:
        if lab.is_floating_point() and bool((lab == lab.round()).all()):
            lab = lab.long()
        else:
            raise MiAssertInputError(f"{what} must be integer class ids; got dtype {lab.dtype}")
    lab = lab.long()
    batch, n_pos = tokens.shape
    if lab.ndim == 1 and single and lab.shape[0] == batch:
        return lab[:, None]
    if lab.ndim == 2 and lab.shape[0] == batch and lab.shape[1] == len(positions):
        return lab
    if lab.ndim == 2 and lab.shape == (batch, n_pos):
        return lab[:, positions]
    raise MiAssertInputError(
        f"{what} has shape {tuple(lab.shape)}; for {batch} prompts of {n_pos} tokens and "
        f"{len(positions)} probed position(s) it must be [{batch}]"
        + (" (one position)" if single else "")
        + f", [{batch}, {len(positions)}] (the probed positions) or [{batch}, {n_pos}] (every "
        "position); use -1 for positions without a label"
    )


def _features(handle: ModelHandle, hook: str, tokens: Tensor, positions: list[int]) -> Tensor:
    parsed = handle.parse_hook(hook)
    _, cache = handle.run_with_cache(tokens, [parsed.name])
    act = cache[parsed.name].movedim(parsed.pos_axis, 1)
    return act[:, positions].reshape(act.shape[0], len(positions), -1).to("cpu", torch.float64)


def _examples(feats: Tensor, labels: Tensor, tokens: Tensor, positions: list[int],
              prompt_ids: Tensor) -> ProbeData:
    mask = labels >= 0
    n_sel = len(positions)
    prompt = prompt_ids[:, None].expand(-1, n_sel)
    token = tokens.cpu()[:, positions]
    return ProbeData(features=feats[mask], labels=labels[mask], prompt=prompt[mask], token=token[mask])


def fit_ridge_probe(x: Tensor, y: Tensor, n_classes: int, *, l2: float = 1e-2) -> Callable[[Tensor], Tensor]:
    """Closed-form ridge classifier (one-vs-rest least squares on +-1 targets, as scikit-learn's
    ``RidgeClassifier``) on standardised features; returns ``predict(x) -> class ids``.

    ``l2`` is the penalty per example (``lambda = l2 * n``), so its strength does not change
    with the number of prompts. One linear solve: fast and deterministic.
    """
    mu = x.mean(0)
    sd = x.std(0, unbiased=False).clamp_min(1e-6)
    xs = torch.cat([(x - mu) / sd, torch.ones(x.shape[0], 1, dtype=x.dtype)], 1)
    targets = -torch.ones(x.shape[0], n_classes, dtype=x.dtype)
    targets[torch.arange(x.shape[0]), y] = 1.0
    penalty = torch.full((xs.shape[1],), float(l2) * x.shape[0], dtype=x.dtype)
    penalty[-1] = 0.0  # no penalty on the intercept
    gram = xs.T @ xs + torch.diag(penalty)
    weight = torch.linalg.solve(gram, xs.T @ targets)

    def predict(z: Tensor) -> Tensor:
        zs = torch.cat([(z - mu) / sd, torch.ones(z.shape[0], 1, dtype=z.dtype)], 1)
        return (zs @ weight).argmax(-1)

    return predict


def _per_prompt(correct: Tensor, prompt: Tensor) -> np.ndarray:
    """Mean of a boolean per example within each prompt (prompts in ascending id order)."""
    ids = torch.unique(prompt)
    return np.array([float(correct[prompt == i].double().mean()) for i in ids.tolist()])


def train_and_score(fit: ProbeData, held: ProbeData, control: str, seed: int, d_vocab: int,
                    *, l2: float = 1e-2) -> ProbeResult:
    """Fit the probe and its control on ``fit``; per-prompt accuracies on ``held``."""
    classes = torch.unique(torch.cat([fit.labels, held.labels]))
    y_fit = torch.searchsorted(classes, fit.labels)
    y_held = torch.searchsorted(classes, held.labels)
    k = int(classes.numel())
    if torch.unique(y_fit).numel() < 2:
        raise MiAssertInputError(
            f"the fit prompts have a single label ({int(classes[y_fit[0]])}): a probe needs at "
            "least two classes to separate")
    predict = fit_ridge_probe(fit.features, y_fit, k, l2=l2)
    fit_acc = float((predict(fit.features) == y_fit).double().mean())
    acc = _per_prompt(predict(held.features) == y_held, held.prompt)
    majority = torch.bincount(y_fit, minlength=k).argmax()
    chance = _per_prompt(y_held == majority, held.prompt)

    gen = torch.Generator().manual_seed(int(seed) + 7919)
    if control == "shuffle":
        c_fit = y_fit[torch.randperm(y_fit.numel(), generator=gen)]
        c_held = y_held[torch.randperm(y_held.numel(), generator=gen)]
    else:  # Hewitt & Liang: a random label per token type, drawn from the fit label distribution
        pick = torch.randint(0, y_fit.numel(), (d_vocab,), generator=gen)
        table = y_fit[pick]
        c_fit, c_held = table[fit.token], table[held.token]
    if torch.unique(c_fit).numel() < 2:
        ctrl = _per_prompt(c_held == c_fit[0], held.prompt)
    else:
        predict_c = fit_ridge_probe(fit.features, c_fit, k, l2=l2)
        ctrl = _per_prompt(predict_c(held.features) == c_held, held.prompt)
    return ProbeResult(accuracy=acc, control_accuracy=ctrl, chance=chance, fit_accuracy=fit_acc,
                       n_classes=k, n_fit=int(fit.labels.numel()), n_heldout=int(held.labels.numel()))


def measure_probe_accuracy(
    model: Any,
    hook: str,
    prompts: Any,
    labels: Labels | tuple[Labels, Labels] | None = None,
    *,
    labels_fn: Callable[[Tensor], Labels] | None = None,
    position: int | Sequence[int] | range | None = -1,
    control: str = "shuffle",
    heldout_fraction: float = 0.5,
    seeds: int | Sequence[int] | None = None,
    seed: int | None = None,
    l2: float = 1e-2,
) -> ProbeMeasurement:
    """Fit the probe and its control per seed; held-out per-prompt accuracies (no verdict).

    ``prompts``: token ids / strings / a PromptSet (each seed splits it into fit and held-out
    prompts with ``heldout_fraction``) or a ``SplitPrompts`` (its ``fit`` and ``heldout``; the
    seed then only draws the control's labels). Labels: ``labels`` (``[batch]`` for one
    position, ``[batch, n_positions]`` for the probed positions, or ``[batch, n_pos]`` for every
    position; for a SplitPrompts a ``(fit, heldout)`` pair) or ``labels_fn(tokens) -> labels``
    of those shapes. Labels < 0 are ignored. ``position``: an int, a list/range of ints, or None
    for every position. One forward pass; one pair of linear solves per seed.
    """
    from mi_assert.prompts import PromptSet, SplitPrompts

    handle = resolve_model(model)
    seed_list = resolve_seeds(seeds, seed)
    handle.parse_hook(hook)  # unknown hooks fail before any work
    if control not in CONTROLS:
        raise MiAssertInputError(f"control {control!r}: allowed {', '.join(map(repr, CONTROLS))}")
    if (labels is None) == (labels_fn is None):
        raise MiAssertInputError("pass exactly one of labels=... or labels_fn=tokens -> labels")
    if isinstance(l2, bool) or not isinstance(l2, (int, float)) or not l2 >= 0:
        raise MiAssertInputError(f"l2 must be a number >= 0; got {l2!r}")
    single = isinstance(position, (int, np.integer))
    per_seed: dict[int, ProbeResult] = {}

    if isinstance(prompts, SplitPrompts):
        fit_tokens = handle.to_tokens(prompts.fit.clean)
        held_tokens = handle.to_tokens(prompts.heldout.clean)
        if labels is not None and not (isinstance(labels, tuple) and len(labels) == 2):
            raise MiAssertInputError(
                "with SplitPrompts, labels must be a (fit_labels, heldout_labels) pair, or use labels_fn")
        fit_labels = labels_fn(fit_tokens) if labels_fn else labels[0]  # type: ignore[index]
        held_labels = labels_fn(held_tokens) if labels_fn else labels[1]  # type: ignore[index]
        split = f"SplitPrompts (seed {prompts.seed}; held-out prompts from an unseen seed)"
        positions = _positions(position, fit_tokens.shape[1])
        positions_held = _positions(position, held_tokens.shape[1])
        fit_lab = _labels_at(fit_labels, fit_tokens, positions, single, "fit labels")
        held_lab = _labels_at(held_labels, held_tokens, positions_held, single, "held-out labels")
        if positions_held == positions:  # one forward pass for both splits
            feats = _features(handle, hook, torch.cat([fit_tokens, held_tokens]), positions)
            fit_feats, held_feats = feats[: fit_tokens.shape[0]], feats[fit_tokens.shape[0]:]
        else:
            fit_feats = _features(handle, hook, fit_tokens, positions)
            held_feats = _features(handle, hook, held_tokens, positions_held)
        fit = _examples(fit_feats, fit_lab, fit_tokens, positions, torch.arange(fit_tokens.shape[0]))
        held = _examples(held_feats, held_lab, held_tokens, positions_held,
                         torch.arange(held_tokens.shape[0]))
        _check_examples(fit, held)
        for s in seed_list:
            per_seed[s] = train_and_score(fit, held, control, s, handle.d_vocab, l2=l2)
            per_seed[s].units = _held_units(held_tokens, held)
    else:
        tokens = handle.to_tokens(prompts.clean if isinstance(prompts, PromptSet) else prompts)
        all_labels = labels_fn(tokens) if labels_fn else labels
        if isinstance(heldout_fraction, bool) or not isinstance(heldout_fraction, (int, float)) \
                or not 0 < heldout_fraction < 1:
            raise MiAssertInputError(f"heldout_fraction must lie in (0, 1); got {heldout_fraction!r}")
        batch = tokens.shape[0]
        n_held = int(round(batch * heldout_fraction))
        if n_held < 2 or batch - n_held < 1:
            raise MiAssertInputError(
                f"{batch} prompts split {batch - n_held} fit / {n_held} held-out: need at least 1 "
                "fit and 2 held-out prompts (pass more prompts)")
        positions = _positions(position, tokens.shape[1])
        lab_all = _labels_at(cast(Any, all_labels), tokens, positions, single, "labels")
        feats = _features(handle, hook, tokens, positions)
        split = f"{batch - n_held} fit / {n_held} held-out prompts (a seeded split per seed)"
        for s in seed_list:
            order = torch.randperm(batch, generator=torch.Generator().manual_seed(int(s)))
            held_idx, fit_idx = order[:n_held].sort().values, order[n_held:].sort().values
            fit_tokens, held_tokens = tokens[fit_idx.to(tokens.device)], tokens[held_idx.to(tokens.device)]
            fit = _examples(feats[fit_idx], lab_all[fit_idx], fit_tokens, positions,
                            torch.arange(fit_idx.numel()))
            held = _examples(feats[held_idx], lab_all[held_idx], held_tokens, positions,
                             torch.arange(held_idx.numel()))
            _check_examples(fit, held)
            per_seed[s] = train_and_score(fit, held, control, s, handle.d_vocab, l2=l2)
            per_seed[s].units = _held_units(held_tokens, held)
    return ProbeMeasurement(hook=hook, control=control, per_seed=per_seed, split=split)


def _check_examples(fit: ProbeData, held: ProbeData) -> None:
    if held.labels.numel() == 0 or fit.labels.numel() == 0:
        raise MiAssertInputError("no labelled examples (all labels < 0) in the fit or held-out prompts")


def _held_units(held_tokens: Tensor, held: ProbeData) -> list[tuple[int, ...]]:
    """Token rows of the held-out prompts that have a labelled example (ascending prompt id,
    the order of :func:`_per_prompt`)."""
    rows = prompt_units(held_tokens)
    return [rows[i] for i in torch.unique(held.prompt).tolist()]


def _probe_claim(
    handle: ModelHandle,
    hook: str,
    prompts: Any,
    labels: Any,
    labels_fn: Callable[[Tensor], Labels] | None,
    position: int | Sequence[int] | range | None,
    min_accuracy: float | None,
    min_selectivity: float,
    control: str,
    heldout_fraction: float,
    l2: float,
    opts: ClaimOptions,
) -> Evidence:
    acc_metric = "held-out probe accuracy"
    sel_metric = f"selectivity (accuracy - {control} control accuracy)"
    if min_accuracy is not None:
        min_accuracy = check_threshold_option("min_accuracy", min_accuracy, "greater",
                                              ACCURACY_RANGE, acc_metric)
    min_selectivity = check_threshold_option("min_selectivity", min_selectivity, "greater",
                                             SELECTIVITY_RANGE, sel_metric)
    meas = measure_probe_accuracy(handle, hook, prompts, labels, labels_fn=labels_fn,
                                  position=position, control=control,
                                  heldout_fraction=heldout_fraction, seeds=opts.seeds, l2=l2)
    chance = meas.chance
    if chance >= 1.0:
        raise MiAssertInputError(
            "every held-out label is the majority fit label (chance accuracy 1): the probe has "
            "nothing to beat; give prompts with more than one label in the held-out set")
    acc_threshold = max(chance, min_accuracy or 0.0)
    by = "chance" if acc_threshold == chance else "min_accuracy"
    model_seed = model_seed_of(handle)
    common: dict[str, Any] = {"quorum": opts.quorum, "n_resamples": opts.n_resamples,
                              "min_units": opts.min_prompts, "hist_figure": False}
    acc_spec = ClaimSpec(
        f"accuracy > {acc_threshold:.3f} ({by})", acc_metric,
        {(s, model_seed): Mean(r.accuracy, units=r.units) for s, r in meas.per_seed.items()},
        acc_threshold, "greater", value_range=ACCURACY_RANGE, **common)
    sel_spec = ClaimSpec(
        f"selectivity > {min_selectivity:g}", sel_metric,
        {(s, model_seed): Mean(r.selectivity, units=r.units) for s, r in meas.per_seed.items()},
        min_selectivity, "greater", value_range=SELECTIVITY_RANGE, **common)
    results = list(meas.per_seed.values())
    first = results[0]
    mean_acc = float(np.mean([r.accuracy.mean() for r in results]))
    mean_ctrl = float(np.mean([r.control_accuracy.mean() for r in results]))
    fit_acc = float(np.mean([r.fit_accuracy for r in results]))
    details = {
        "held-out accuracy": mean_acc,
        "chance (majority fit label)": chance,
        f"control accuracy ({control})": mean_ctrl,
        "selectivity": float(np.mean([r.selectivity.mean() for r in results])),
        "fit accuracy": fit_acc,
        "classes": first.n_classes,
        "examples": f"{first.n_fit} fit / {first.n_heldout} held-out",
        "split": meas.split,
    }
    settings = {"hook": hook, "position": position if not isinstance(position, range) else
                f"range({position.start}, {position.stop})", "control": control,
                "min_accuracy": min_accuracy, "min_selectivity": min_selectivity, "l2": l2,
                "seeds": list(opts.seeds), "probe": "ridge classifier (closed form, one-vs-rest)"}
    figures = {
        "samples": {"kind": "hist", "data": [first.accuracy, first.control_accuracy],
                    "labels": ["probe", f"{control} control"], "xlabel": "held-out accuracy per prompt",
                    "ylabel": "prompts", "title": f"probe at {hook}: accuracy vs control",
                    "threshold": acc_threshold},
    }
    ev = all_of([acc_spec, sel_spec], claim=f"a linear probe at {hook} decodes the labels",
                alpha=opts.alpha, settings=settings, model_info=handle.describe(),
                details=details, figures=figures)
    hint = (f"probe at {hook}: held-out accuracy {mean_acc:.3f} (fit {fit_acc:.3f}), chance "
            f"{chance:.3f}, {control} control {mean_ctrl:.3f}. A fit accuracy far above the "
            "held-out one means the probe memorised: use more prompts or a larger l2.")
    return ev.with_context(hint=hint)


def check_probe_accuracy(
    model: Any,
    hook: str,
    prompts: Any,
    labels: Labels | tuple[Labels, Labels] | None = None,
    *,
    labels_fn: Callable[[Tensor], Labels] | None = None,
    position: int | Sequence[int] | range | None = -1,
    min_accuracy: float | None = None,
    min_selectivity: float = 0.0,
    control: str = "shuffle",
    heldout_fraction: float = 0.5,
    alpha: float = 0.05,
    seeds: int | Sequence[int] | None = None,
    seed: int | None = None,
    quorum: int | float | None = None,
    l2: float = 1e-2,
    n_resamples: int = 2000,
    min_prompts: int = DEFAULT_MIN_UNITS,
) -> Evidence:
    """Evidence for: a linear probe at ``hook`` decodes the labels on held-out prompts, beating
    chance (and ``min_accuracy``, in ``[0, 1)``) and a control task by ``min_selectivity`` (in
    ``[-1, 1)``); see the module docstring and :func:`measure_probe_accuracy` for the inputs.

    Two members, both at ``alpha`` (intersection-union); the headline is the deciding member in
    its own metric (accuracy against its threshold, or selectivity against its). With several
    ``seeds`` (alias ``seed``; each draws its own split and control) the accuracy threshold is
    the highest chance level over the seeds. Rows need ``min_prompts`` distinct held-out
    prompts. Never raises on a failed claim (see :func:`assert_probe_accuracy`).
    """
    handle = resolve_model(model)
    opts = readout_options(seeds=seeds, seed=seed, quorum=quorum, alpha=alpha,
                           n_resamples=n_resamples, min_prompts=min_prompts)
    return _probe_claim(handle, hook, prompts, labels, labels_fn, position, min_accuracy,
                         min_selectivity, control, heldout_fraction, l2, opts)


assert_probe_accuracy = asserting(check_probe_accuracy)


