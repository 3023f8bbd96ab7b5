"""Per-prompt, per-layer agreement of the logit lens or a tuned lens with the model's output.

For each prompt and layer ``l``: the residual stream ``blocks.{l}.hook_resid_post`` is decoded
through the lens (:class:`~mi_assert.lens.translators.TunedLens`, or the identity for the logit
lens) and the model's final norm and unembedding, and compared at every non-BOS position with
the model's own output distribution:

* ``kl``: ``KL(final || lens)`` in nats, the mean over the prompt's non-BOS positions;
* ``top1``: the fraction of those positions where the lens's argmax token is the output's.

One prompt is one unit (copies of a prompt are one unit when the claims resample). Plain data
only: :mod:`mi_assert.lens.assertions` judges it.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from mi_assert.backends.base import ModelHandle
from mi_assert.errors import MiAssertInputError, suggest
from mi_assert.lens.divergence import kl_per_position, masked_mean, top1_match
from mi_assert.lens.readout import Readout
from mi_assert.lens.translators import TunedLens
from mi_assert.loading import resolve_model
from mi_assert.stats.bootstrap import bootstrap
from mi_assert.stats.statistic import Mean

#: what ``lens=`` accepts besides a TunedLens object
LENS_NAMES = ("logit", "tuned")
#: prompts per forward pass
BATCH = 16

LensArg = str | TunedLens


@dataclass(frozen=True)
class LensMeasurement:
    """What :func:`measure_lens` measured: ``kl`` and ``top1`` are ``[n_prompts, n_layers]``
    (columns in the order of ``layers``); ``units`` one id per prompt (its token ids)."""

    lens: str
    layers: tuple[int, ...]
    kl: np.ndarray
    top1: np.ndarray
    units: tuple[Hashable, ...]
    n_positions: np.ndarray
    settings: Mapping[str, Any] = field(default_factory=dict)
    model_info: Mapping[str, Any] = field(default_factory=dict)

    @property
    def n_prompts(self) -> int:
        return int(self.kl.shape[0])

    def column(self, layer: int) -> int:
        return self.layers.index(layer)


def resolve_lens(handle: ModelHandle, lens: Any) -> tuple[str, TunedLens | None]:
    """``("logit", None)`` or ``("tuned", lens)``; ``"tuned"`` loads the lens saved as
    ``lenses/tuned`` beside the model's checkpoint folder."""
    if isinstance(lens, TunedLens):
        return "tuned", lens
    if isinstance(lens, str):
        key = lens.strip().lower().replace("_lens", "").replace(" lens", "")
        if key == "logit":
            return "logit", None
        if key == "tuned":
            from mi_assert.lens.store import load_lens

            return "tuned", load_lens(handle, "tuned")
    shown = lens if isinstance(lens, str) else type(lens).__name__
    hint = suggest(lens, LENS_NAMES) if isinstance(lens, str) else ""
    raise MiAssertInputError(
        f"unknown lens {shown!r}.{hint} Allowed: 'logit' (identity translators), 'tuned' (the "
        "lens saved as lenses/tuned beside the model's checkpoint) or a TunedLens object")


def check_layers(handle: ModelHandle, layers: Any) -> tuple[int, ...]:
    """Layers as distinct ints in ``0..n_layers-1`` (``None``: all)."""
    n = handle.n_layers
    if layers is None:
        return tuple(range(n))
    items = [layers] if isinstance(layers, (int, np.integer)) and not isinstance(layers, bool) else layers
    try:
        items = list(items)
    except TypeError:
        items = [layers]
    out: list[int] = []
    for layer in items:
        if isinstance(layer, bool) or not isinstance(layer, (int, np.integer)) or not 0 <= layer < n:
            raise MiAssertInputError(f"layer {layer!r} is out of range: the model has {n} layers "
                                     f"(0..{n - 1}; layer l is blocks.l.hook_resid_post)")
        out.append(int(layer))
    if not out:
        raise MiAssertInputError(f"no layers given: name at least one of 0..{n - 1}")
    if len(set(out)) != len(out):
        raise MiAssertInputError(f"layers must be distinct; got {out}")
    return tuple(out)


def prompt_ids(tokens: Tensor) -> tuple[tuple[int, ...], ...]:
    return tuple(tuple(int(t) for t in row) for row in tokens.detach().cpu().tolist())


def _measure(handle: ModelHandle, tokens: Tensor, lenses: Mapping[str, TunedLens | None],
             layers: tuple[int, ...]
             ) -> tuple[dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]], str]:
    """Per lens label: (kl, top1, n_positions) arrays, in one forward pass per batch; and
    how the readout was done."""
    readout = Readout(handle)
    for lens in lenses.values():
        if lens is not None:
            lens.to(handle.device)
    hooks = [f"blocks.{layer}.hook_resid_post" for layer in layers]
    last = readout.last_hook
    bos = handle.bos_token_id
    mask_all = (tokens != bos) if bos is not None else torch.ones_like(tokens, dtype=torch.bool)
    counts = mask_all.sum(1)
    if bool((counts == 0).any()):
        raise MiAssertInputError("a prompt has no position besides BOS: lens agreement is "
                                 "measured on the non-BOS positions; give longer prompts")
    out: dict[str, tuple[list[Tensor], list[Tensor]]] = {k: ([], []) for k in lenses}
    with torch.no_grad():
        for start in range(0, tokens.shape[0], BATCH):
            chunk = tokens[start:start + BATCH]
            mask = mask_all[start:start + BATCH].to(handle.device)
            logits, cache = handle.run_with_cache(chunk, list(dict.fromkeys([*hooks, last])))
            readout.verify(cache[last], logits)
            for label, lens in lenses.items():
                kls, tops = [], []
                for layer, hook in zip(layers, hooks, strict=True):
                    h = cache[hook]
                    lens_logits = (readout(h, chunk) if lens is None
                                   else lens.logits(h, layer, readout, chunk))
                    kls.append(masked_mean(kl_per_position(logits, lens_logits), mask))
                    tops.append(masked_mean(top1_match(logits, lens_logits), mask))
                out[label][0].append(torch.stack(kls, 1).double().cpu())
                out[label][1].append(torch.stack(tops, 1).double().cpu())
    n_pos = counts.cpu().numpy().astype(np.float64)
    return {label: (torch.cat(k).numpy(), torch.cat(t).numpy(), n_pos)
            for label, (k, t) in out.items()}, readout.source


def _settings(handle: ModelHandle, label: str, lens: TunedLens | None, source: str) -> dict[str, Any]:
    settings: dict[str, Any] = {"lens": label, "readout": source,
                                "positions": "every non-BOS position",
                                "hook": "blocks.{layer}.hook_resid_post"}
    if lens is not None:
        settings.update(lens.describe())
        warnings = lens.model_warnings(handle)
        if warnings:
            settings["lens_warning"] = "; ".join(warnings)
    return settings


def measure_lens(model: Any, prompts: Any, lens: LensArg = "logit",
                 layers: int | Sequence[int] | None = None) -> LensMeasurement:
    """Per-prompt, per-layer ``KL(final || lens)`` and top-1 agreement (module docstring).

    ``prompts``: ``[batch, pos]`` token ids or equal-length strings; ``lens``: ``"logit"``,
    ``"tuned"`` (saved beside the checkpoint) or a :class:`TunedLens`; ``layers``: an int, a
    list, or None for every layer.
    """
    handle = resolve_model(model)
    label, tuned = resolve_lens(handle, lens)
    if tuned is not None:
        tuned.model_warnings(handle)  # a lens of another shape is refused before any work
    chosen = check_layers(handle, layers)
    tokens = handle.to_tokens(prompts)
    data, source = _measure(handle, tokens, {label: tuned}, chosen)
    kl, top1, n_pos = data[label]
    return LensMeasurement(lens=label, layers=chosen, kl=kl, top1=top1, units=prompt_ids(tokens),
                           n_positions=n_pos, settings=_settings(handle, label, tuned, source),
                           model_info=handle.describe())


@dataclass(frozen=True)
class LensProfile:
    """Mean KL per layer for the logit and the tuned lens, with bootstrap intervals over
    prompts (``{lens: {"estimate"|"low"|"high": [per layer]}}``), and their figure specs."""

    layers: tuple[int, ...]
    kl: Mapping[str, Mapping[str, list[float]]]
    measurements: Mapping[str, LensMeasurement]
    alpha: float

    def figures(self) -> dict[str, dict[str, Any]]:
        """One ``"line"`` figure per lens: KL per layer with its interval band."""
        out: dict[str, dict[str, Any]] = {}
        for label, row in self.kl.items():
            out[f"lens_kl_{label}"] = {
                "kind": "line",
                "data": {"x": list(range(len(self.layers))), "y": list(row["estimate"]),
                         "low": list(row["low"]), "high": list(row["high"]),
                         "xticklabels": [f"L{layer}" for layer in self.layers]},
                "xlabel": "layer (resid_post)", "ylabel": "KL(final || lens), nats",
                "title": f"{label} lens: mean KL to the model's output per layer "
                         f"(band: {1 - 2 * self.alpha:.0%} bootstrap interval over prompts)",
            }
        return out

    def summary(self) -> str:
        parts = []
        for label, row in self.kl.items():
            parts.append(f"{label}: " + ", ".join(
                f"L{layer} {v:.4g}" for layer, v in zip(self.layers, row["estimate"], strict=True)))
        return "; ".join(parts)


def profile_of(measurements: Mapping[str, LensMeasurement], *, alpha: float = 0.05,
               n_resamples: int = 2000, seed: int = 0) -> LensProfile:
    """The :class:`LensProfile` of measurements that share prompts and layers."""
    first = next(iter(measurements.values()))
    kl: dict[str, dict[str, list[float]]] = {}
    for label, m in measurements.items():
        rows: dict[str, list[float]] = {"estimate": [], "low": [], "high": []}
        for j in range(len(m.layers)):
            res = bootstrap(Mean(m.kl[:, j], units=m.units), alpha=alpha,
                            n_resamples=n_resamples, seed=seed)
            rows["estimate"].append(float(res.estimate))
            rows["low"].append(float(res.low))
            rows["high"].append(float(res.high))
        kl[label] = rows
    return LensProfile(layers=first.layers, kl=kl, measurements=dict(measurements), alpha=alpha)


def measure_both(model: Any, prompts: Any, tuned_lens: LensArg,
                 layers: int | Sequence[int] | None = None) -> dict[str, LensMeasurement]:
    """Logit-lens and tuned-lens measurements on the same prompts, in one pass per batch."""
    handle = resolve_model(model)
    label, tuned = resolve_lens(handle, tuned_lens)
    if tuned is None:
        raise MiAssertInputError(
            f"tuned_lens must be a TunedLens or 'tuned' (saved beside the checkpoint); got "
            f"{tuned_lens!r}, the logit lens itself")
    tuned.model_warnings(handle)
    chosen = check_layers(handle, layers)
    tokens = handle.to_tokens(prompts)
    data, source = _measure(handle, tokens, {"logit": None, "tuned": tuned}, chosen)
    units = prompt_ids(tokens)
    info = handle.describe()
    return {lab: LensMeasurement(lens=lab, layers=chosen, kl=data[lab][0], top1=data[lab][1],
                                 units=units, n_positions=data[lab][2],
                                 settings=_settings(handle, lab, tuned if lab == "tuned" else None,
                                                    source),
                                 model_info=info)
            for lab in ("logit", "tuned")}


def lens_profile(model: Any, prompts: Any, tuned_lens: LensArg = "tuned",
                 layers: int | Sequence[int] | None = None, *, alpha: float = 0.05,
                 n_resamples: int = 2000, seed: int = 0) -> LensProfile:
    """KL per layer of the logit lens and ``tuned_lens`` on ``prompts``, with bootstrap
    intervals over prompts and ``"line"`` figure specs (:meth:`LensProfile.figures`)."""
    return profile_of(measure_both(model, prompts, tuned_lens, layers), alpha=alpha,
                      n_resamples=n_resamples, seed=seed)
