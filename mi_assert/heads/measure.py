"""Measure one head role on every head of a model, over seeds and conditions.

:func:`measure_role` does the model work once (one batched forward pass per prompt batch for
attention roles; one weight product per layer for copying) and keeps per-sample scores for
*every* head. Claims about any head are then pure statistics on those samples
(:meth:`RoleMeasurement.claim` → :class:`~mi_assert.stats.claims.ClaimSpec`), which is what the
``assert_*`` helpers, :func:`~mi_assert.heads.discovery.find_heads`, the failure hints and the
calibration tests share.

Rows of samples (see :mod:`mi_assert.stats.claims`):

* attention roles: one row per (sampling seed, model seed, repeat length); a seed passes only
  when every repeat length passes;
* copying: one row per (sampling seed, model seed) over the seed's token draw.

Units: a row resamples its prompts (copying: its row tokens); each sample carries the id of
its prompt (the token ids), so copies of one prompt count once and a row resting on fewer than
``min_prompts`` distinct prompts is refused rather than decided.
"""

from __future__ import annotations

import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import torch

from mi_assert.backends import ModelHandle
from mi_assert.errors import MiAssertInputError, suggest
from mi_assert.heads.copying import (
    copying_draw,
    eigenvalue_score,
    random_eigenvalue_score,
    unembed_embed,
)
from mi_assert.heads.names import Head, head_name
from mi_assert.heads.prompts import (
    DEFAULT_REPEAT_LENS,
    Split,
    fit_repeat_lens,
    repeated_prompt_rows,
    user_prompt_rows,
)
from mi_assert.heads.scores import ATTENTION_ROLES, attention_scores, resolve_role
from mi_assert.loading import resolve_model
from mi_assert.stats.claims import DEFAULT_MIN_UNITS, ClaimSpec, RowKey, check_threshold
from mi_assert.stats.evidence import Evidence
from mi_assert.stats.options import check_count, check_quorum, claim_options
from mi_assert.stats.statistic import Mean

#: per row: one id per sample (the prompt's token ids, or the token id for copying)
UnitIds = dict[RowKey, tuple[Hashable, ...]]


@dataclass(frozen=True)
class RoleInfo:
    """Defaults and wording for one role. ``threshold`` is on the role's standard score.

    ``value_range``: the values the score can take (thresholds outside it are refused);
    ``unit``: what one sample is; ``scale``: the score's range in words.
    """

    threshold: float
    metric: str
    noun: str
    plural: str
    why: str
    value_range: tuple[float, float] = (0.0, 1.0)
    unit: str = "prompts"
    scale: str = "a share of the head's attention, between 0 and 1"


#: Default thresholds and why (each is overridable with ``threshold=``).
ROLE_INFO: dict[str, RoleInfo] = {
    "induction": RoleInfo(
        0.4, "induction score", "an induction head", "induction heads",
        "0.4 on the standard induction score (mean attention on the token after the earlier copy "
        "of the current token): the cut-off of TransformerLens's head-detector demo and ARENA 1.2"),
    "previous_token": RoleInfo(
        0.4, "previous-token score", "a previous-token head", "previous-token heads",
        "0.4 mean attention on position i-1, the cut-off ARENA 1.2's prev_attn_detector uses"),
    "duplicate_token": RoleInfo(
        0.4, "duplicate-token score", "a duplicate-token head", "duplicate-token heads",
        "0.4 mean attention on earlier copies of the current token, the same detector "
        "convention as the other TL/ARENA head detectors"),
    "bos": RoleInfo(
        0.5, "attention to BOS", "an attention sink (attends to BOS)", "attention sinks",
        "0.5: BOS gets the majority of the head's attention, averaged over query positions. "
        "The prompts repeat their tokens, so half the positions offer content; a head that "
        "falls back to BOS only where content is missing (an induction head on the first "
        "repeat) stays below a majority, while the detector convention of 0.4 would call it a sink"),
    "copying": RoleInfo(
        0.9, "OV diagonal percentile", "a copying head", "copying heads",
        "0.9: attending to token t makes t outrank 90% of the vocabulary on average; a random "
        "OV circuit of the same shapes scores 0.5 (measured each call, shown in details)",
        unit="tokens", scale="a percentile of the vocabulary, between 0 and 1"),
}


@dataclass(frozen=True)
class HeadOptions:
    """Options every head assertion accepts (``**options``); see docs/heads.md.

    threshold: the bound must clear it (default per role, :data:`ROLE_INFO`); it must lie in
        the score's range, [0, 1).
    alpha: one-sided level per row (Holm-adjusted per member for several heads).
    seeds: sampling seeds; each draws fresh held-out prompts.
    model_seeds: training seeds of a zoo model to check too (model given as a zoo spec or a
        handle whose ``meta`` has ``"zoo"``); ``None``: only the model given.
    quorum: how many (sampling seed, model seed) pairs must pass; default all.
    n_resamples: bootstrap resamples.
    min_prompts: distinct prompts (copying: tokens) a row must rest on; fewer is refused.
    n_prompts: prompts per repeat length per seed.
    repeat_lens: repeat lengths (default :data:`DEFAULT_REPEAT_LENS`, shortened to fit n_ctx).
    vocab_fraction: share of the allowed vocabulary each prompt set draws from.
    prompts: your own token ids / strings / PromptSet instead of generated ones (then one row
        per model seed; sampling seeds are not used).
    batch_size: prompts per forward pass.
    n_tokens, max_columns: copying: row tokens per seed and comparison columns.

    The shared options (seeds, model_seeds, quorum, alpha, n_resamples, min_prompts) are
    validated by :func:`mi_assert.stats.options.claim_options`, as in every family.
    """

    threshold: float | None = None
    alpha: float = 0.05
    seeds: tuple[int, ...] = (0, 1, 2)
    model_seeds: tuple[int, ...] | None = None
    quorum: int | float | None = None
    n_resamples: int = 2000
    min_prompts: int = DEFAULT_MIN_UNITS
    n_prompts: int = 32
    repeat_lens: tuple[int, ...] | None = None
    vocab_fraction: float = 0.5
    prompts: Any = None
    batch_size: int = 64
    n_tokens: int = 256
    max_columns: int = 4096


OPTION_NAMES: tuple[str, ...] = tuple(f.name for f in fields(HeadOptions))
#: count options and the least value each allows
_COUNTS: tuple[tuple[str, int], ...] = (("n_prompts", 2), ("batch_size", 1), ("n_tokens", 2),
                                        ("max_columns", 1))


def parse_options(options: dict[str, Any]) -> HeadOptions:
    """Validate ``**options`` (unknown names and bad values raise, naming what is allowed)."""
    unknown = [k for k in options if k not in OPTION_NAMES]
    if unknown:
        raise MiAssertInputError(
            f"unknown option(s) {', '.join(map(repr, unknown))}.{suggest(unknown[0], OPTION_NAMES)} "
            f"Allowed: {', '.join(OPTION_NAMES)}"
        )
    defaults = HeadOptions()

    def get(name: str) -> Any:
        return options.get(name, getattr(defaults, name))

    shared = claim_options(seeds=get("seeds"), model_seeds=get("model_seeds"),
                           quorum=get("quorum"), alpha=get("alpha"),
                           n_resamples=get("n_resamples"), min_prompts=get("min_prompts"))
    if get("prompts") is not None and shared.quorum is not None:
        # caller-given prompts: one row per model seed, the sampling seeds are not used
        n_groups = len(shared.model_seeds) if shared.model_seeds else 1
        try:
            check_quorum(shared.quorum, n_groups)
        except MiAssertInputError as exc:
            raise MiAssertInputError(
                f"{exc}; with prompts= the sampling seeds are not used, so there are "
                f"{n_groups} seed(s) to count") from None
    counts = {name: check_count(get(name), name, minimum) for name, minimum in _COUNTS}
    repeat_lens = _check_repeat_lens(get("repeat_lens"))
    threshold = get("threshold")
    if threshold is not None and (isinstance(threshold, bool)
                                  or not isinstance(threshold, (int, float, np.integer, np.floating))
                                  or not np.isfinite(threshold)):
        raise MiAssertInputError(f"threshold must be a finite number; got {threshold!r}")
    vocab_fraction = get("vocab_fraction")
    if isinstance(vocab_fraction, bool) or not isinstance(vocab_fraction, (int, float, np.floating)) \
            or not 0 < float(vocab_fraction) <= 1:
        raise MiAssertInputError(f"vocab_fraction must be a number in (0, 1]; got {vocab_fraction!r}")
    return HeadOptions(
        threshold=None if threshold is None else float(threshold), alpha=shared.alpha,
        seeds=shared.seeds, model_seeds=shared.model_seeds, quorum=shared.quorum,
        n_resamples=shared.n_resamples, min_prompts=shared.min_prompts,
        repeat_lens=repeat_lens, vocab_fraction=float(vocab_fraction), prompts=get("prompts"),
        **counts)


def _check_repeat_lens(value: Any) -> tuple[int, ...] | None:
    """None (the defaults) or distinct ints >= 2."""
    if value is None:
        return None
    single = isinstance(value, (int, np.integer)) and not isinstance(value, bool)
    try:
        lens = (value,) if single else tuple(value) if not isinstance(value, str) else ()
    except TypeError:
        lens = ()
    if (not lens or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in lens)
            or len(set(lens)) != len(lens) or min(lens) < 2):
        raise MiAssertInputError(f"repeat_lens must be an int or distinct ints, each >= 2; got {value!r}")
    return tuple(int(v) for v in lens)


def check_role_threshold(role: str, threshold: float | None) -> None:
    """Refuse a threshold outside the role's score range (before any model work).

    The claim is "the lower bound exceeds the threshold", so a threshold below the range's
    low end is cleared by every head and one at or above its high end by none.
    """
    if threshold is None:
        return
    info = ROLE_INFO[role]
    lo, hi = info.value_range
    if not lo <= threshold < hi:
        raise MiAssertInputError(
            f"threshold={threshold:g} is outside the range of the {info.metric}: it is "
            f"{info.scale}, so a claim that a head is {info.noun} needs a threshold in "
            f"[{lo:g}, {hi:g}) "
            f"(below {lo:g} every head would pass, at {hi:g} or above none could)")
    check_threshold(threshold, "greater", info.value_range, info.metric)


@dataclass
class RoleMeasurement:
    """Per-sample scores of one role for every head, keyed by row (seed, model seed, condition).

    Plain data: ``rows[key]`` is ``[n_samples, n_layers, n_heads]``, ``units[key]`` one id per
    sample (the prompt's token ids; copying: the token id), so repeated prompts merge into one
    unit when a claim is bootstrapped.
    """

    role: str
    rows: dict[RowKey, np.ndarray]  # each [n_samples, n_layers, n_heads]
    n_layers: int
    n_heads: int
    options: HeadOptions
    settings: dict[str, Any]
    model_info: dict[str, Any]
    example: dict[str, Any] = field(default_factory=dict)
    #: extra per-head details, computed on first use (e.g. copying's eigenvalue score)
    head_details: Callable[[Head], dict[str, Any]] | None = None
    units: UnitIds = field(default_factory=dict)
    #: attention roles: ``[n_layers, n_heads]`` mean scores of every head of the model on the
    #: survey prompts (:data:`SURVEY_PROMPTS`), computed on first use; what a failed claim's
    #: hint ranks, so the hint is the same whichever layers the claim measured
    survey: Callable[[], np.ndarray] | None = None
    #: which prompts the survey is, in words
    survey_label: str = ""

    @property
    def info(self) -> RoleInfo:
        return ROLE_INFO[self.role]

    @property
    def measured_layers(self) -> int:
        """How many leading layers ``rows`` cover (a claim measures up to the deepest layer it
        reads; discovery measures all)."""
        first = next(iter(self.rows.values()), None)
        return self.n_layers if first is None else int(first.shape[1])

    @property
    def threshold(self) -> float:
        return self.info.threshold if self.options.threshold is None else float(self.options.threshold)

    def mean_scores(self) -> np.ndarray:
        """``[n_layers, n_heads]``: mean over rows of each row's mean score."""
        return np.mean([arr.mean(0) for arr in self.rows.values()], axis=0)

    def ranking(self) -> list[tuple[int, int, float]]:
        means = self.mean_scores()
        order = sorted(((float(means[l_, h_]), l_, h_) for l_ in range(self.n_layers)
                        for h_ in range(self.n_heads)), key=lambda t: (-t[0], t[1], t[2]))
        return [(l_, h_, s) for s, l_, h_ in order]

    def best_heads_text(self, k: int = 5) -> str:
        """The ``k`` best heads of the whole model: on the survey prompts for attention roles
        (whichever layers were measured), on the measured samples for copying."""
        if self.survey is None:
            top = self.ranking()[:k]
            where = "on these prompts"
        else:
            means = self.survey()
            top = sorted(((l_, h_, float(means[l_, h_])) for l_ in range(self.n_layers)
                          for h_ in range(self.n_heads)), key=lambda t: (-t[2], t[0], t[1]))[:k]
            where = f"in the model, on {self.survey_label}"
        listed = ", ".join(f"{head_name(l_, h_)} {s:.3f}" for l_, h_, s in top)
        return f"best-scoring heads for {self.role} {where} ({self.info.metric}): {listed}"

    def with_failure_hint(self, evidence: Evidence) -> Evidence:
        """``evidence`` with the best heads of the role as its hint when it failed (the
        survey it ranks may cost a short forward pass, so passing claims skip it)."""
        return evidence if evidence.passed else evidence.with_context(hint=self.best_heads_text())

    def pattern_figure(self, head: Head) -> dict[str, Any] | None:
        """The head's attention pattern on one held-out prompt (None when not kept)."""
        layer, h = head
        pattern = self.example.get("patterns")
        if pattern is None or layer not in pattern:
            return None
        return {
            "kind": "pattern", "data": pattern[layer][h].numpy(),
            "tokens": self.example["tokens"], "xlabel": "key position",
            "ylabel": "query position",
            "title": f"{head_name(layer, h)} attention on one held-out prompt "
                     f"({self.example['label']})",
        }

    def claim(self, head: Head) -> ClaimSpec:
        """The statistical claim "``head`` plays this role" on the measured samples."""
        layer, h = head
        name = head_name(layer, h)
        if not 0 <= layer < self.measured_layers:
            raise MiAssertInputError(
                f"{name}: this measurement covers layers 0..{self.measured_layers - 1} only; "
                f"measure with through_layer={layer} (or None for every layer)")
        info = self.info
        pattern = self.pattern_figure(head)
        details = self.head_details(head) if self.head_details is not None else {}
        return ClaimSpec(
            claim=f"{name} is {info.noun}", metric=info.metric,
            samples={key: Mean(arr[:, layer, h], units=self.units.get(key), unit=info.unit)
                     for key, arr in self.rows.items()},
            threshold=self.threshold, alternative="greater", quorum=self.options.quorum,
            settings={**self.settings, "head": name}, model_info=self.model_info,
            details=details, figures={} if pattern is None else {"pattern": pattern},
            n_resamples=self.options.n_resamples, min_units=self.options.min_prompts,
            value_range=info.value_range, unit=info.unit,
        )

    def evidence(self, head: Head) -> Evidence:
        """The claim for one head evaluated at ``alpha`` (what ``check_*`` returns for it)."""
        return self.with_failure_hint(self.claim(head).evaluate(self.options.alpha))


def _model_handles(handle: ModelHandle, model_seeds: Sequence[int] | None) -> list[tuple[int | None, ModelHandle]]:
    """The handle per model seed (loading other training seeds of a zoo model)."""
    if model_seeds is None:
        return [(None, handle)]
    zoo = getattr(handle, "meta", {}).get("zoo")
    if zoo is None:
        raise MiAssertInputError(
            f"model_seeds={list(model_seeds)} needs a zoo model (a spec like "
            f"'attn-only-2l-induction@s0' or a handle from mi_assert.load_model of a zoo name); "
            f"{handle.spec!r} has no training seeds mi-assert knows of"
        )
    from mi_assert.loading import load_model

    own = getattr(handle, "meta", {}).get("model_seed")
    out: list[tuple[int | None, ModelHandle]] = []
    for seed in model_seeds:
        if seed == own:
            out.append((seed, handle))
        else:
            out.append((seed, load_model(f"{zoo}@s{seed}", backend=handle.backend,
                                         device=str(handle.device))))
    return out


def measure_role(model: Any, role: str, split: Split = "heldout", *,
                 through_layer: int | None = None, **options: Any) -> RoleMeasurement:
    """Score ``role`` for every head of ``model`` over seeds, model seeds and conditions.

    ``split="heldout"`` (assertions) draws prompts from ``seed + HELDOUT_OFFSET``;
    ``"fit"`` (discovery) from ``seed``. ``through_layer``: score the attention roles on layers
    0..through_layer only (the forward passes end there; a layer's scores do not depend on
    it); None scores every layer. ``options``: see :class:`HeadOptions`.
    """
    return measure_roles(model, [role], split, through_layer=through_layer, **options)[resolve_role(role)]


def measure_roles(model: Any, roles: Sequence[str], split: Split = "heldout", *,
                  through_layer: int | None = None, **options: Any) -> dict[str, RoleMeasurement]:
    """:func:`measure_role` for several roles at once: attention roles share forward passes."""
    wanted = list(dict.fromkeys(resolve_role(r) for r in roles))
    if not wanted:
        raise MiAssertInputError("roles is empty: name at least one head role")
    if split not in ("fit", "heldout"):
        raise MiAssertInputError(f"split {split!r}: allowed 'fit' or 'heldout'")
    opts = parse_options(options)
    for role in wanted:
        check_role_threshold(role, opts.threshold)
    handle = resolve_model(model)
    depth = handle.n_layers if through_layer is None else handle.check_layer(through_layer) + 1
    handles = _model_handles(handle, opts.model_seeds)
    for _, other in handles[1:]:
        if (other.n_layers, other.n_heads) != (handle.n_layers, handle.n_heads):
            raise MiAssertInputError(f"model seeds differ in shape: {other!r} vs {handle!r}")
    if "bos" in wanted and handle.bos_token_id is None:
        raise MiAssertInputError(
            f"model {handle.spec!r} has no BOS token, so 'attends to BOS' is undefined; "
            "set handle.meta['bos_token_id'] or use a model that prepends BOS"
        )
    common: dict[str, Any] = {"split": split, "alpha": opts.alpha, "min_prompts": opts.min_prompts}
    if opts.model_seeds is not None:
        common["model_seeds"] = list(opts.model_seeds)
        common["checkpoints"] = {ms: h.checkpoint_hash() for ms, h in handles}
    model_info = handle.describe()
    out: dict[str, RoleMeasurement] = {}
    attention = [r for r in wanted if r in ATTENTION_ROLES]
    if attention:
        settings = dict(common)
        entry = _cached_attention(attention, handles, opts, settings, depth)
        example = {**entry.example, "patterns": {layer: p for layer, p in entry.example["patterns"].items()
                                                 if layer < depth}} if entry.example else {}
        for role in attention:
            out[role] = RoleMeasurement(
                role=role, rows={key: arr[:, :depth] for key, arr in entry.rows[role].items()},
                n_layers=handle.n_layers, n_heads=handle.n_heads,
                options=opts, settings=_role_settings(role, opts, settings),
                model_info=model_info, example=example, units=entry.units,
                survey=_survey_provider(entry, role, handle, opts.batch_size),
                survey_label=entry.survey_label)
    if "copying" in wanted:
        settings = dict(common)
        rows_c, units_c, head_details = _measure_copying(handles, opts, settings)
        out["copying"] = RoleMeasurement(
            role="copying", rows=rows_c, n_layers=handle.n_layers, n_heads=handle.n_heads,
            options=opts, settings=_role_settings("copying", opts, settings),
            model_info=model_info, head_details=head_details, units=units_c)
    return {role: out[role] for role in wanted}


def _role_settings(role: str, opts: HeadOptions, settings: dict[str, Any]) -> dict[str, Any]:
    info = ROLE_INFO[role]
    threshold = info.threshold if opts.threshold is None else opts.threshold
    return {"role": role, "threshold": threshold,
            "threshold_why": info.why if opts.threshold is None else "given by the caller",
            **settings}


#: prompts a failed claim's hint ranks every head on: the first of each row of the first seed
#: (2 per repeat length by default), so a claim that measured only early layers pays a short
#: full-depth pass for it, and only when it fails
SURVEY_PROMPTS = 8


@dataclass
class AttentionEntry:
    """Every attention role's per-prompt scores on layers ``0..depth-1`` for one prompt design.

    Plain data (no reference to the model or its handle), so a cache of entries keyed weakly by
    the model never keeps the model alive.
    """

    rows: dict[str, dict[RowKey, np.ndarray]]  # role -> row -> [n_samples, depth, n_heads]
    units: UnitIds
    example: dict[str, Any]
    settings: dict[str, Any]
    depth: int
    #: the survey prompts, one token tensor per row of the first seed (CPU)
    survey_tokens: list[torch.Tensor]
    #: the survey prompts in words
    survey_label: str = ""
    #: role -> ``[n_layers, n_heads]`` survey means, filled on first use
    survey: dict[str, np.ndarray] = field(default_factory=dict)


class _PerModelCache:
    """Recent :class:`AttentionEntry` per model object, held weakly.

    Keyed by ``id(model)`` with a weak reference whose callback drops the model's entries, so
    the model's own ``__eq__``/``__hash__`` (an nnsight envoy proxies them) are never called, and
    a model nobody else holds is freed with its entries.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._models: dict[int, tuple[weakref.ref[Any], OrderedDict[tuple, AttentionEntry]]] = {}

    def entries(self, model: Any) -> OrderedDict[tuple, AttentionEntry] | None:
        """The model's entries (created empty); None when it cannot be weakly referenced."""
        held = self._models.get(id(model))
        if held is not None and held[0]() is model:
            return held[1]
        key = id(model)

        def forget(_: Any, models: dict[int, Any] = self._models) -> None:
            models.pop(key, None)

        try:
            ref = weakref.ref(model, forget)
        except TypeError:
            return None
        entries: OrderedDict[tuple, AttentionEntry] = OrderedDict()
        self._models[key] = (ref, entries)
        return entries

    def put(self, entries: OrderedDict[tuple, AttentionEntry], key: tuple, entry: AttentionEntry) -> None:
        entries[key] = entry
        entries.move_to_end(key)
        while len(entries) > self.size:
            entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._models)

    def clear(self) -> None:
        self._models.clear()


#: recent attention measurements per model object (a raw model reuses them across claims as a
#: handle does): {model: {prompt design and weights version: AttentionEntry}}
_ATTENTION_CACHE = _PerModelCache(size=8)


def _weights_fingerprint(handle: ModelHandle) -> tuple | None:
    """:meth:`ModelHandle.weights_version`, or None when the handle cannot say."""
    try:
        return handle.weights_version()
    except (AttributeError, TypeError, RuntimeError):
        return None


def clear_cache() -> None:
    """Forget cached attention measurements (they are also dropped with their model)."""
    _ATTENTION_CACHE.clear()


def _handle_facts(handle: ModelHandle) -> tuple:
    """What besides the weights decides a measurement: the backend, the prompt vocabulary's
    conventions (BOS, special ids) and where the trace runs."""
    return (type(handle).__qualname__, handle.bos_token_id, tuple(sorted(handle.special_token_ids)),
            str(getattr(handle, "remote", None)))


def _cached_attention(roles: list[str], handles: list[tuple[int | None, ModelHandle]],
                      opts: HeadOptions, settings: dict[str, Any], depth: int) -> AttentionEntry:
    """The attention ``roles`` measured on layers ``0..depth-1`` (at least), reused while the
    weights and prompt options are unchanged: several claims on one model, raw or wrapped,
    share forward passes (a cached entry holds every attention role), and a claim on a
    shallower layer reuses a deeper measurement. Caller-given prompts and model seeds are not
    cached, and measure only ``roles`` (given prompts need not suit the others)."""
    handle = handles[0][1]
    fingerprint = _weights_fingerprint(handle)
    entries = None
    if opts.prompts is None and opts.model_seeds is None and fingerprint is not None:
        entries = _ATTENTION_CACHE.entries(handle.model)
    if entries is None:
        entry = _measure_attention(roles, handles, opts, dict(settings), depth)
    else:
        key = (_handle_facts(handle), fingerprint, settings["split"], opts.seeds, opts.n_prompts,
               opts.repeat_lens, opts.vocab_fraction, opts.batch_size)
        cached = entries.get(key)
        if cached is not None and cached.depth >= depth:
            entry = cached
        else:
            entry = _measure_attention(list(ATTENTION_ROLES), handles, opts, dict(settings), depth)
            if cached is not None:
                entry.survey.update(cached.survey)  # the same prompts, whatever the depth
        _ATTENTION_CACHE.put(entries, key, entry)
    settings.update({k: v for k, v in entry.settings.items() if k not in settings})
    return entry


def _survey_provider(entry: AttentionEntry, role: str, handle: ModelHandle,
                     batch_size: int) -> Callable[[], np.ndarray]:
    """The ``[n_layers, n_heads]`` survey means of ``role``: from the measured rows when they
    cover every layer, else from one full-depth pass over the survey prompts (kept in the entry)."""

    def survey() -> np.ndarray:
        if role not in entry.survey:
            n_rows = len(entry.survey_tokens)
            if entry.depth == handle.n_layers:
                first = [key for key in entry.rows[role]][:n_rows]
                per_row = [entry.rows[role][key][: len(tokens)].mean(0)
                           for key, tokens in zip(first, entry.survey_tokens, strict=True)]
                entry.survey[role] = np.mean(per_row, axis=0)
            else:
                per_role: dict[str, list[np.ndarray]] = {r: [] for r in entry.rows}
                for tokens in entry.survey_tokens:
                    scores, _ = attention_scores(handle, list(entry.rows), tokens.to(handle.device),
                                                 batch_size=batch_size, keep_example=False)
                    for r in entry.rows:
                        per_role[r].append(scores[r].numpy().astype(np.float64).mean(0))
                entry.survey.update({r: np.mean(v, axis=0) for r, v in per_role.items()})
        return entry.survey[role]

    return survey


def prompt_ids(tokens: torch.Tensor) -> tuple[Hashable, ...]:
    """One id per prompt: its token ids (equal prompts get equal ids)."""
    return tuple(tuple(row) for row in tokens.tolist())


def _measure_attention(roles: list[str], handles: list[tuple[int | None, ModelHandle]],
                       opts: HeadOptions, settings: dict[str, Any], depth: int) -> AttentionEntry:
    """``roles`` on layers ``0..depth-1``; ``settings`` gains the prompt design."""
    roles = list(roles)
    base = handles[0][1]
    if opts.prompts is not None:
        settings["prompts"] = "given by the caller (sampling seeds not used)"
        prompt_rows = {0: user_prompt_rows(base, opts.prompts)}
        seeds: tuple[int, ...] = (0,)
    else:
        lens, note = fit_repeat_lens(base, opts.repeat_lens or DEFAULT_REPEAT_LENS,
                                     explicit=opts.repeat_lens is not None)
        settings.update(seeds=list(opts.seeds), n_prompts=opts.n_prompts, repeat_lens=lens,
                        vocab_fraction=opts.vocab_fraction)
        if note:
            settings["repeat_lens_note"] = note
        seeds = opts.seeds
        prompt_rows = {s: repeated_prompt_rows(base, s, lens, opts.n_prompts, settings["split"],
                                               opts.vocab_fraction) for s in seeds}
    if "bos" in roles and base.bos_token_id is None:
        roles.remove("bos")
    measured: dict[str, dict[RowKey, np.ndarray]] = {role: {} for role in roles}
    units: UnitIds = {}
    example: dict[str, Any] = {}
    for model_seed, handle in handles:
        # one condition's prompts have the same length for every seed: batch the seeds together
        for condition in zip(*(prompt_rows[seed] for seed in seeds), strict=True):
            tokens = torch.cat([prow.tokens for prow in condition])
            scores, patterns = attention_scores(handle, roles, tokens.to(handle.device),
                                                batch_size=opts.batch_size,
                                                keep_example=not example, n_layers=depth)
            sizes = [len(prow.tokens) for prow in condition]
            for seed, prow in zip(seeds, condition, strict=True):
                units[RowKey(seed, model_seed, prow.label)] = prompt_ids(prow.tokens)
            for role in roles:
                per_seed = torch.split(scores[role], sizes)
                for seed, prow, part in zip(seeds, condition, per_seed, strict=True):
                    measured[role][RowKey(seed, model_seed, prow.label)] = part.numpy().astype(np.float64)
            if not example:
                example.update(patterns=patterns, tokens=condition[0].tokens[0].tolist(),
                               label=f"seed {seeds[0]}, {condition[0].label}, prompt 0")
    # rows in (model seed, seed, condition) order, as the evidence tables list them
    order = [RowKey(seed, model_seed, prow.label) for model_seed, _ in handles for seed in seeds
             for prow in prompt_rows[seed]]
    rows = {role: {key: measured[role][key] for key in order} for role in roles}
    first_rows = prompt_rows[seeds[0]]
    per_row = max(1, -(-SURVEY_PROMPTS // len(first_rows)))
    survey_tokens = [prow.tokens[:per_row] for prow in first_rows]
    n_survey = sum(len(t) for t in survey_tokens)
    if opts.prompts is not None:
        label = f"the first {n_survey} of these prompts"
    else:
        label = (f"{n_survey} of these prompts (the first {per_row} of each repeat length of "
                 f"seed {seeds[0]}; find_heads ranks on more)")
    return AttentionEntry(rows=rows, units={key: units[key] for key in order}, example=example,
                          settings=settings, depth=depth, survey_tokens=survey_tokens,
                          survey_label=label)


def _measure_copying(
    handles: list[tuple[int | None, ModelHandle]], opts: HeadOptions, settings: dict[str, Any],
) -> tuple[dict[RowKey, np.ndarray], UnitIds, Callable[[Head], dict[str, Any]]]:
    if opts.prompts is not None:
        raise MiAssertInputError("prompts= does not apply to copying: it is a weight-based claim")
    base = handles[0][1]
    settings.update(seeds=list(opts.seeds), n_tokens=opts.n_tokens, max_columns=opts.max_columns)
    rows: dict[RowKey, np.ndarray] = {}
    units: UnitIds = {}
    baselines: list[float] = []
    for model_seed, handle in handles:
        for seed in opts.seeds:
            draw = copying_draw(handle, seed, opts.n_tokens, opts.max_columns)
            rows[RowKey(seed, model_seed, "")] = draw.scores.numpy()
            units[RowKey(seed, model_seed, "")] = tuple(draw.tokens.tolist())
            baselines.append(float(draw.baseline.mean()))
            settings["n_tokens"], settings["n_columns"] = draw.n_tokens, draw.n_columns
    mean_baseline = float(np.mean(baselines))
    per_seed = ", ".join(f"{b:.3f}" for b in baselines)
    memo: dict[str, Any] = {}

    def head_details(head: Head) -> dict[str, Any]:
        # eigenvalues cost a d_head x d_head eigendecomposition per head: only for heads asked;
        # W_U W_E is shared by every head and the random baseline, so it is formed once
        if "random" not in memo:
            memo["ue"] = unembed_embed(base)
            memo["random"] = random_eigenvalue_score(base, opts.seeds[0], ue=memo["ue"])
        return {
            "eigenvalue_copying_score": round(eigenvalue_score(base, *head, ue=memo["ue"]), 4),
            "random_baseline": f"random OV circuit of the same shapes: diagonal percentile "
                               f"{mean_baseline:.3f} (per seed {per_seed}); eigenvalue score "
                               f"{memo['random']:.3f}",
        }

    return rows, units, head_details
