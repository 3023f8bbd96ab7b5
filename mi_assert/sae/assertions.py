"""SAE claims: reconstruction, feature recovery, feature firing and feature steering.

Measuring is apart from judging: :func:`measure_sae_reconstruction` returns plain per-prompt
data, every ``check_*`` turns data into an :class:`~mi_assert.stats.evidence.Evidence` without
raising on a failed claim, and every ``assert_*`` is its ``check_*`` followed by
:func:`mi_assert.verdict.raise_if_failed` (``ClaimFailed``, an ``AssertionError``, with the
evidence table).

Each criterion of one call is a member claim (:class:`~mi_assert.stats.claims.ClaimSpec`) and
the claim is that every criterion holds: an intersection-union test (:func:`~mi_assert.stats.
composite.all_of`), each member at ``alpha``. The headline is the deciding member, in its own
units. Verdicts use one-sided bounds from the one bootstrap engine (prompts resampled); the
statistics are described in :mod:`mi_assert.sae.resample` and docs/sae.md.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from mi_assert.causal.metrics import bind_metric
from mi_assert.errors import MiAssertInputError, check_finite
from mi_assert.loading import resolve_model
from mi_assert.sae import dashboard as D
from mi_assert.sae import metrics as M
from mi_assert.sae import resample as R
from mi_assert.stats.bootstrap import Alternative
from mi_assert.stats.claims import DEFAULT_MIN_UNITS, ClaimSpec, check_threshold
from mi_assert.stats.composite import all_of
from mi_assert.stats.evidence import Evidence
from mi_assert.stats.options import ClaimOptions, check_int_list, claim_options
from mi_assert.stats.statistic import AUROC, Mean
from mi_assert.verdict import asserting

#: checked when assert_sae_reconstruction is given no criterion (see docs/sae.md for why 0.7)
DEFAULT_MIN_EXPLAINED_VARIANCE = 0.7
DEFAULT_MIN_MMCS = 0.9
DEFAULT_MIN_AUROC = 0.9

#: ranges the metrics can take (a threshold outside is refused: it would decide nothing)
EXPLAINED_VARIANCE_RANGE = (-np.inf, 1.0)
MSE_RANGE = (0.0, np.inf)
DEAD_FRACTION_RANGE = (0.0, 1.0)
AUROC_RANGE = (0.0, 1.0)
COSINE_RANGE = (-1.0, 1.0)

TokensLike = Tensor | Sequence[Any] | Callable[[int], Any]

RECONSTRUCTION_HINT = (
    "An SAE that fails reconstruction at its own hook may have been trained on another "
    "model/hook, or on normalised activations whose scaling was not folded into its weights.")
RECOVERY_HINT = (
    "Low MMCS: the decoder directions do not match the true features (too few latents, too "
    "little training, or the wrong sparsity penalty).")
FIRES_HINT = (
    "The latent does not separate the prompts: check the feature index, the hook, and whether "
    "the concept appears in the positive prompts at all.")
STEERING_HINT = (
    "Steering did not move the metric: the latent's decoder direction may not be read by "
    "anything downstream of the hook, or the scale is too small.")


def _options(seeds: Any, seed: Any, alpha: Any, n_resamples: Any, min_prompts: Any) -> ClaimOptions:
    """The shared options; ``seed=`` is the single-seed alias of ``seeds=``."""
    if seed is not None:
        if seeds is not None:
            raise MiAssertInputError("give seeds= or its alias seed=, not both")
        seeds = seed
    return claim_options(seeds=(0,) if seeds is None else seeds, alpha=alpha,
                         n_resamples=n_resamples, min_prompts=min_prompts)


def _sae_check(sae: Any, what: str) -> None:
    M.check_is_sae(sae)
    if M.is_transcoder(sae) and what in ("reconstruction", "steering"):
        raise MiAssertInputError(
            f"{M.architecture(sae)} SAEs (transcoders) read one hook and write another "
            f"(d_in={sae.cfg.d_in}, d_out={getattr(sae.cfg, 'd_out', '?')}), so a {what} claim "
            "that splices them in place at one hook is not supported. assert_feature_fires and "
            "assert_feature_recovery work on transcoders"
        )


def prompt_ids(tokens: Tensor) -> tuple[tuple[int, ...], ...]:
    """One id per prompt (its token ids): copies of one prompt are one unit, not several."""
    return tuple(tuple(int(t) for t in row) for row in tokens.detach().cpu().tolist())


# ----- reconstruction: measure ------------------------------------------------------------------
@dataclass(frozen=True)
class PromptData:
    """One seed's reconstruction measurements, per prompt (plain arrays; the bootstrap's units).

    ``sum_sq_err``, ``sum_sq_dev``, ``sum_l0`` and ``n_tokens`` are ``[n_prompts]`` sums over
    the counted tokens of each prompt (BOS left out with ``exclude_bos``) of ``|x - x̂|²``,
    ``|x - x̄|²`` (``x̄``: the mean over all counted tokens), the number of active latents, and 1.
    ``fired`` is ``[n_prompts, d_sae]``: whether each latent fired on a counted token of the
    prompt. ``ce_*`` are per-prompt mean next-token CE losses (clean, SAE spliced in,
    zero-ablated) over the counted CE positions, or None when not measured. ``units``: one id per
    prompt (its token ids) or None where every row is its own prompt (activations).
    ``metrics``: the point values run_evals reports, computed from these same arrays.
    """

    sum_sq_err: np.ndarray
    sum_sq_dev: np.ndarray
    sum_l0: np.ndarray
    n_tokens: np.ndarray
    fired: np.ndarray
    l0_per_token: np.ndarray
    sq_err_per_token: np.ndarray
    ce_clean: np.ndarray | None = None
    ce_sae: np.ndarray | None = None
    ce_zero: np.ndarray | None = None
    units: tuple[Hashable, ...] | None = None
    metrics: Mapping[str, float] = field(default_factory=dict)

    @property
    def n_prompts(self) -> int:
        return int(self.sum_sq_err.shape[0])

    @property
    def has_ce(self) -> bool:
        return self.ce_clean is not None


@dataclass(frozen=True)
class ReconstructionData:
    """What :func:`measure_sae_reconstruction` measured: per seed, a :class:`PromptData`."""

    per_seed: Mapping[int, PromptData]
    hook: str | None
    sae: Mapping[str, Any]
    model: Mapping[str, Any]
    exclude_bos: bool = True
    ce_positions: tuple[int, ...] | None = None


def _prompt_data(stats: M.ReconstructionSamples, ce: M.CELosses | None,
                 units: tuple[Hashable, ...] | None) -> PromptData:
    mask = stats.mask

    def per_prompt(values: np.ndarray) -> np.ndarray:
        return np.where(mask, values, 0.0).sum(1).astype(np.float64)

    sum_err, sum_dev, sum_l0 = per_prompt(stats.sq_err), per_prompt(stats.sq_dev), per_prompt(stats.l0)
    n_tok = mask.sum(1).astype(np.float64)
    total_dev = float(sum_dev.sum())
    metrics: dict[str, float] = {
        "explained_variance": 1.0 - float(sum_err.sum()) / total_dev if total_dev > 0 else float("nan"),
        "explained_variance_legacy": stats.explained_variance["legacy"],
        "explained_variance_per_dim": stats.explained_variance["per_dim"],
        "mse": float(sum_err.sum() / n_tok.sum()),
        "cosine": stats.cosine,
        "l2_ratio": stats.l2_ratio,
        "l0": float(sum_l0.sum() / n_tok.sum()),
        "dead_fraction": R.dead_fraction(stats.fired),
        "n_prompts": stats.n_prompts,
        "n_tokens": stats.n_tokens,
    }
    if ce is not None:
        metrics.update(ce_clean=float(ce.clean.mean()), ce_sae=float(ce.sae.mean()),
                       ce_zero_ablated=float(ce.zero.mean()), ce_loss_recovered=ce.recovered(),
                       ce_loss_increase=float((ce.sae - ce.clean).mean()))
    return PromptData(
        sum_sq_err=sum_err, sum_sq_dev=sum_dev, sum_l0=sum_l0, n_tokens=n_tok, fired=stats.fired,
        l0_per_token=stats.l0[mask], sq_err_per_token=stats.sq_err[mask],
        ce_clean=None if ce is None else ce.clean, ce_sae=None if ce is None else ce.sae,
        ce_zero=None if ce is None else ce.zero, units=units, metrics=metrics)


def _check_activations(acts: Any) -> Tensor:
    if not isinstance(acts, Tensor):
        try:
            acts = torch.as_tensor(acts, dtype=torch.float32)
        except (TypeError, ValueError) as exc:
            raise MiAssertInputError(f"activations must be a float tensor; got {type(acts).__name__}") from exc
    if not acts.is_floating_point():
        raise MiAssertInputError(f"activations must be floating point; got {acts.dtype}")
    if acts.ndim < 2 or acts.numel() == 0:
        raise MiAssertInputError(
            f"activations must be a non-empty [n, d_in] or [batch, pos, d_in] tensor; got shape {tuple(acts.shape)}"
        )
    if acts.ndim == 2 and acts.shape[0] < 2:
        raise MiAssertInputError("need at least 2 activation rows for a confidence interval")
    check_finite("activations", acts)
    return acts


def measure_sae_reconstruction(
    sae: Any,
    model: Any = None,
    tokens: TokensLike | None = None,
    *,
    activations: Tensor | Callable[[int], Tensor] | None = None,
    hook: str | None = None,
    seeds: Sequence[int] | int = (0,),
    exclude_bos: bool = True,
    ce_positions: Sequence[int] | None = None,
    with_ce: bool | None = None,
) -> ReconstructionData:
    """Measure an SAE's reconstruction per prompt, for each seed (no verdict).

    Give a model and ``tokens`` (a ``[batch, pos]`` tensor, strings if the model has a
    tokenizer, or a callable ``seed -> tokens``), or ``activations`` without a model (``[n, d_in]``:
    each row its own prompt, or ``[batch, pos, d_in]``; or a callable ``seed ->`` those).
    Per-head activations (``attn.hook_z``: ``[n, n_heads, d_head]`` or ``[batch, pos, n_heads,
    d_head]``) are flattened head-major for an SAE with ``d_in = n_heads * d_head``, as SAELens
    z SAEs read them. ``with_ce`` (default: when a model is given) splices the SAE in to measure the CE losses.
    Fixed tokens or activations are measured once and serve every seed (seeds then differ only
    in the bootstrap); a callable is measured per seed.
    """
    _sae_check(sae, "reconstruction")
    seed_list = check_int_list(seeds, "seeds")
    assert seed_list is not None
    if (model is None) == (activations is None):
        raise MiAssertInputError(
            "give either a model and tokens (the SAE is spliced in at its hook) or activations= "
            "(a tensor [n, d_in] / [batch, pos, d_in]) without a model"
        )
    handle = None
    hook_name = hook
    if model is not None:
        if tokens is None:
            raise MiAssertInputError("tokens are required with a model: a [batch, pos] tensor of ids")
        handle = resolve_model(model)
        hook_name = M.check_hook(handle, sae, hook)
    with_ce = handle is not None if with_ce is None else bool(with_ce)
    if with_ce and handle is None:
        raise MiAssertInputError(
            "min_ce_loss_recovered / max_ce_loss_increase splice the SAE into a model: pass "
            "model= and tokens= instead of activations="
        )
    positions = None if ce_positions is None else tuple(int(p) for p in ce_positions)

    def measure(seed: int) -> PromptData:
        if handle is not None:
            toks = handle.to_tokens(tokens(seed) if callable(tokens) else tokens)
            stats, ce = M.measure_on_model(handle, sae, toks, hook_name, with_ce=with_ce,  # type: ignore[arg-type]
                                           exclude_bos=exclude_bos, ce_positions=positions)
            return _prompt_data(stats, ce, prompt_ids(toks))
        acts = _check_activations(activations(seed) if callable(activations) else activations)
        # per-head activations ([n, head, d_head]) become rows of d_in first, so their head
        # dimension is never read as token positions
        acts = M.as_sae_input(sae, acts)
        feats, recon = M.sae_forward(sae, acts)
        return _prompt_data(M.reconstruction_samples(acts, feats, recon), None, None)

    per_seed_data = callable(tokens) if handle is not None else callable(activations)
    shared = None if per_seed_data else measure(seed_list[0])
    per_seed = {seed: shared if shared is not None else measure(seed) for seed in seed_list}
    return ReconstructionData(
        per_seed=per_seed, hook=hook_name, sae=M.describe_sae(sae, hook_name),
        model=handle.describe() if handle is not None else {"spec": "activations (no model)"},
        exclude_bos=exclude_bos, ce_positions=positions)


# ----- reconstruction: judge --------------------------------------------------------------------
def _criterion(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not np.isfinite(value):
        raise MiAssertInputError(f"{name} must be a finite number; got {value!r}")
    return float(value)


def _check_ce_baseline(data: PromptData, seed: int) -> None:
    assert data.ce_clean is not None and data.ce_zero is not None
    zero, clean = float(data.ce_zero.mean()), float(data.ce_clean.mean())
    if zero - clean <= 0:
        raise MiAssertInputError(
            f"CE loss recovered is undefined here (seed {seed}): zero-ablating the hook gives CE "
            f"{zero:.4f}, no worse than the clean model's {clean:.4f}, so the ratio "
            "(CE_zero - CE_sae) / (CE_zero - CE_clean) has no meaningful denominator. Count only "
            "positions where the model uses the hook (ce_positions=..., e.g. the second half of "
            "repeated-token prompts) or use max_ce_loss_increase"
        )


def _check_variance(data: PromptData, seed: int) -> None:
    if not float(data.sum_sq_dev.sum()) > 0:
        raise MiAssertInputError(
            f"explained variance is undefined here (seed {seed}): the counted activations do not "
            "vary (every token equals their mean), so there is no variance to explain")


def _mean_over(data: ReconstructionData, key: str) -> float:
    return round(float(np.mean([d.metrics[key] for d in data.per_seed.values()])), 6)


@dataclass(frozen=True)
class _Criterion:
    """One reconstruction criterion: which option sets it and how its member is measured."""

    key: str
    label: str
    metric: str
    alternative: Alternative
    statistic: Callable[[PromptData], Any]
    value_range: tuple[float, float] | None
    settings: Mapping[str, Any] = field(default_factory=dict)


#: every reconstruction criterion, in the order members are listed (L0 bounds: range [0, d_sae])
_CRITERIA: tuple[_Criterion, ...] = (
    _Criterion("min_explained_variance", "explained variance", "explained variance (pooled)",
               "greater",
               lambda d: R.explained_variance(d.sum_sq_err, d.sum_sq_dev, units=d.units),
               EXPLAINED_VARIANCE_RANGE),
    _Criterion("max_mse", "MSE", "MSE (sum over dims, mean over tokens)", "less",
               lambda d: R.token_mean(d.sum_sq_err, d.n_tokens, units=d.units), MSE_RANGE),
    _Criterion("min_ce_loss_recovered", "CE loss recovered", "CE loss recovered", "greater",
               lambda d: R.ce_loss_recovered(d.ce_clean, d.ce_sae, d.ce_zero, units=d.units),
               None),
    _Criterion("max_ce_loss_increase", "CE loss increase", "CE loss increase (nats)", "less",
               lambda d: Mean(np.asarray(d.ce_sae) - np.asarray(d.ce_clean), units=d.units),
               None),
    _Criterion("l0_low", "L0", "L0 (active latents per token)", "greater",
               lambda d: R.token_mean(d.sum_l0, d.n_tokens, units=d.units), None),
    _Criterion("l0_high", "L0", "L0 (active latents per token)", "less",
               lambda d: R.token_mean(d.sum_l0, d.n_tokens, units=d.units), None),
    _Criterion("max_dead_fraction", "dead fraction", "dead latent fraction", "less",
               lambda d: R.dead_fraction_bound(d.fired, units=d.units), DEAD_FRACTION_RANGE,
               {"interval": R.DEAD_FRACTION_BOUND}),
)


def reconstruction_evidence(
    data: ReconstructionData,
    *,
    min_explained_variance: float | None = None,
    max_mse: float | None = None,
    min_ce_loss_recovered: float | None = None,
    max_ce_loss_increase: float | None = None,
    l0_range: tuple[float, float] | None = None,
    max_dead_fraction: float | None = None,
    alpha: float = 0.05,
    n_resamples: int = 2000,
    min_prompts: int = DEFAULT_MIN_UNITS,
) -> Evidence:
    """Judge measured reconstruction data (see :func:`check_sae_reconstruction`)."""
    opts = claim_options(seeds=list(data.per_seed), alpha=alpha, n_resamples=n_resamples,
                         min_prompts=min_prompts)
    d_sae = float(data.sae["sae_d_sae"])
    crit = _reconstruction_criteria(min_explained_variance, max_mse, min_ce_loss_recovered,
                                    max_ce_loss_increase, l0_range, max_dead_fraction, d_sae)
    # the most latents a token can have active (k for a TopK SAE), which bounds an L0 sample
    # without spread; never below the stated upper end, which may sit above k
    l0_top = min(d_sae, max(float(data.sae.get("sae_k", d_sae)), crit.get("l0_high", 0.0)))
    needs_ce = "min_ce_loss_recovered" in crit or "max_ce_loss_increase" in crit
    for seed, d in data.per_seed.items():
        if needs_ce and not d.has_ce:
            raise MiAssertInputError(
                "min_ce_loss_recovered / max_ce_loss_increase splice the SAE into a model: pass "
                "model= and tokens= (measured with_ce=True)")
        if "min_ce_loss_recovered" in crit:
            _check_ce_baseline(d, seed)
        if "min_explained_variance" in crit:
            _check_variance(d, seed)

    def spec(claim: str, metric: str, make: Callable[[PromptData], Any], threshold: float,
             alternative: Alternative, value_range: tuple[float, float] | None,
             settings: Mapping[str, Any] | None = None) -> ClaimSpec:
        return ClaimSpec(
            claim=claim, metric=metric,
            samples={seed: make(d) for seed, d in data.per_seed.items()},
            threshold=threshold, alternative=alternative, n_resamples=opts.n_resamples,
            min_units=opts.min_prompts, value_range=value_range, unit="prompts",
            settings=dict(settings or {}), hist_figure=False)

    members = [spec(f"{c.label} {'>' if c.alternative == 'greater' else '<'} {crit[c.key]:g}",
                    c.metric, c.statistic, crit[c.key], c.alternative,
                    (0.0, l0_top) if c.key.startswith("l0") else c.value_range,
                    settings=c.settings)
               for c in _CRITERIA if c.key in crit]

    first = next(iter(data.per_seed.values()))
    details: dict[str, Any] = {
        "explained_variance (pooled, SAELens>=6)": _mean_over(data, "explained_variance"),
        "explained_variance_legacy (per-token mean)": _mean_over(data, "explained_variance_legacy"),
        "explained_variance_per_dim (sklearn)": _mean_over(data, "explained_variance_per_dim"),
        "mse": _mean_over(data, "mse"),
        "cosine(x, x_hat)": _mean_over(data, "cosine"),
        "l2_ratio |x_hat|/|x|": _mean_over(data, "l2_ratio"),
        "l0": _mean_over(data, "l0"),
        "dead_fraction": _mean_over(data, "dead_fraction"),
        "n_prompts": first.n_prompts, "n_tokens": int(first.metrics["n_tokens"]),
    }
    if all(d.has_ce for d in data.per_seed.values()):
        details.update({
            "ce_clean": _mean_over(data, "ce_clean"),
            "ce_with_sae": _mean_over(data, "ce_sae"),
            "ce_zero_ablated": _mean_over(data, "ce_zero_ablated"),
        })
    settings: dict[str, Any] = {**data.sae, "seeds": list(opts.seeds),
                                "n_resamples": opts.n_resamples, "min_prompts": opts.min_prompts}
    if data.model.get("spec") != "activations (no model)":
        settings["exclude_bos"] = data.exclude_bos
    if data.ce_positions is not None:
        settings["ce_positions"] = list(data.ce_positions)
    figures = {
        "l0": {"kind": "hist", "data": first.l0_per_token, "xlabel": "active latents per token",
               "ylabel": "tokens", "title": "SAE L0 per token"},
        "sq_err": {"kind": "hist", "data": first.sq_err_per_token, "xlabel": "|x - x_hat|^2",
                   "ylabel": "tokens", "title": "reconstruction error per token"},
    }
    return all_of(members, claim=f"SAE reconstructs {data.hook or 'the activations'}",
                  alpha=opts.alpha, settings=settings, model_info=dict(data.model),
                  details=details, figures=figures)


def _reconstruction_criteria(min_explained_variance: Any, max_mse: Any, min_ce_loss_recovered: Any,
                             max_ce_loss_increase: Any, l0_range: Any, max_dead_fraction: Any,
                             d_sae: float) -> dict[str, float]:
    """Validated criteria (thresholds range-checked); with none given, explained variance 0.7."""
    given = {"min_explained_variance": min_explained_variance, "max_mse": max_mse,
             "min_ce_loss_recovered": min_ce_loss_recovered,
             "max_ce_loss_increase": max_ce_loss_increase, "max_dead_fraction": max_dead_fraction}
    if l0_range is None and all(v is None for v in given.values()):
        given["min_explained_variance"] = DEFAULT_MIN_EXPLAINED_VARIANCE
    ranges: dict[str, tuple[Alternative, tuple[float, float] | None, str]] = {
        "min_explained_variance": ("greater", EXPLAINED_VARIANCE_RANGE, "explained variance"),
        "max_mse": ("less", MSE_RANGE, "MSE"),
        "min_ce_loss_recovered": ("greater", None, "CE loss recovered"),
        "max_ce_loss_increase": ("less", None, "CE loss increase"),
        "max_dead_fraction": ("less", DEAD_FRACTION_RANGE, "dead latent fraction"),
    }
    out: dict[str, float] = {}
    for key, value in given.items():
        if value is None:
            continue
        alternative, value_range, metric = ranges[key]
        try:
            out[key] = check_threshold(_criterion(key, value), alternative, value_range, metric)
        except MiAssertInputError as exc:
            raise MiAssertInputError(f"{key}: {exc}") from exc
    if l0_range is not None:
        if (not isinstance(l0_range, (tuple, list)) or len(l0_range) != 2
                or not all(isinstance(v, (int, float, np.integer, np.floating))
                           and not isinstance(v, bool) and np.isfinite(v) for v in l0_range)
                or not l0_range[0] < l0_range[1]):
            raise MiAssertInputError(f"l0_range must be (low, high) with low < high; got {l0_range!r}")
        try:
            out["l0_low"] = check_threshold(float(l0_range[0]), "greater", (0.0, d_sae), "L0")
            out["l0_high"] = check_threshold(float(l0_range[1]), "less", (0.0, d_sae), "L0")
        except MiAssertInputError as exc:
            raise MiAssertInputError(f"l0_range: {exc}") from exc
    return out


def check_sae_reconstruction(
    sae: Any,
    model: Any = None,
    tokens: TokensLike | None = None,
    *,
    activations: Tensor | Callable[[int], Tensor] | None = None,
    min_explained_variance: float | None = None,
    max_mse: float | None = None,
    min_ce_loss_recovered: float | None = None,
    max_ce_loss_increase: float | None = None,
    l0_range: tuple[float, float] | None = None,
    max_dead_fraction: float | None = None,
    hook: str | None = None,
    seeds: Sequence[int] | int = (0,),
    alpha: float = 0.05,
    exclude_bos: bool = True,
    ce_positions: Sequence[int] | None = None,
    n_resamples: int = 2000,
    min_prompts: int = DEFAULT_MIN_UNITS,
) -> Evidence:
    """The reconstruction claim's evidence, without raising on a failed claim.

    Criteria (each optional; with none given, ``min_explained_variance=0.7``), each a member:

    * ``min_explained_variance``: pooled explained variance ``1 - Σ|x - x̂|² / Σ|x - x̄|²``
      (SAELens ≥ 6's formula; the legacy per-token and per-dimension variants are reported in
      ``details``), a ratio of means over prompts (BCa). Thresholds must be below 1.
    * ``max_mse``: mean over tokens of ``|x - x̂|²`` summed over dimensions (SAELens's ``mse``).
    * ``min_ce_loss_recovered``: ``(CE_zero - CE_sae) / (CE_zero - CE_clean)`` with the SAE's
      reconstruction spliced in at the hook and a zero-ablation baseline (model needed). The
      ratio needs CE_zero > CE_clean on the counted positions (``ce_positions``: the predicting
      positions whose loss counts; default all): where zero-ablating the hook does not hurt
      the loss the ratio is meaningless and a clear error says so.
    * ``max_ce_loss_increase``: mean per-prompt ``CE_sae - CE_clean`` (nats).
    * ``l0_range=(lo, hi)``: mean number of active latents per token lies in ``(lo, hi)``
      (two members: above ``lo``, below ``hi``; both within ``[0, d_sae]``).
    * ``max_dead_fraction``: share of latents that fire on no counted token. Its bound is exact
      (no bootstrap): a latent that fires on a sampled prompt is not dead, so the sample's dead
      fraction bounds the population's from above (a zero-width interval, ``n`` = prompts).

    Every member must pass at ``alpha`` (intersection-union); each seed must pass. The headline
    is the deciding member (its metric, estimate, interval, bound, threshold and ``n``). Tokens
    are the units: copies of one prompt count once, and each seed needs ``min_prompts`` distinct
    prompts. See :func:`measure_sae_reconstruction` for the inputs.
    """
    opts = claim_options(seeds=seeds, alpha=alpha, n_resamples=n_resamples, min_prompts=min_prompts)
    _sae_check(sae, "reconstruction")
    _reconstruction_criteria(min_explained_variance, max_mse, min_ce_loss_recovered,
                             max_ce_loss_increase, l0_range, max_dead_fraction,
                             float(sae.cfg.d_sae))
    needs_ce = min_ce_loss_recovered is not None or max_ce_loss_increase is not None
    if needs_ce and model is None and activations is not None:
        raise MiAssertInputError(
            "min_ce_loss_recovered / max_ce_loss_increase splice the SAE into a model: pass "
            "model= and tokens= instead of activations="
        )
    data = measure_sae_reconstruction(
        sae, model, tokens, activations=activations, hook=hook, seeds=opts.seeds,
        exclude_bos=exclude_bos, ce_positions=ce_positions, with_ce=needs_ce)
    return reconstruction_evidence(
        data, min_explained_variance=min_explained_variance, max_mse=max_mse,
        min_ce_loss_recovered=min_ce_loss_recovered, max_ce_loss_increase=max_ce_loss_increase,
        l0_range=l0_range, max_dead_fraction=max_dead_fraction, alpha=opts.alpha,
        n_resamples=opts.n_resamples, min_prompts=opts.min_prompts,
    ).with_context(hint=RECONSTRUCTION_HINT)


assert_sae_reconstruction = asserting(check_sae_reconstruction)


# ----- feature recovery -------------------------------------------------------------------------
def check_feature_recovery(
    sae: Any,
    true_features: Any,
    min_mmcs: float = DEFAULT_MIN_MMCS,
    *,
    alpha: float = 0.05,
    seeds: Sequence[int] | int | None = None,
    seed: int | None = None,
    n_resamples: int = 2000,
    min_features: int = DEFAULT_MIN_UNITS,
) -> Evidence:
    """Claim: the SAE's decoder recovers known features.

    MMCS (mean max cosine similarity): for each true feature (a row of ``true_features``,
    ``[n_features, d]``, or an object with ``.features``), the largest cosine similarity with any
    decoder direction; the claim is that their mean exceeds ``min_mmcs`` (in ``[-1, 1)``),
    bootstrapping over features (at least ``min_features``). This is a claim about the dictionary
    only: an SAE whose decoder rows are permuted recovers the same directions (and fails
    reconstruction instead). Options: ``alpha``, ``seeds`` (alias ``seed``), ``n_resamples``.
    """
    opts = _options(seeds, seed, alpha, n_resamples, min_features)
    M.check_is_sae(sae)
    metric = "max cosine similarity per feature (MMCS)"
    threshold = check_threshold(_criterion("min_mmcs", min_mmcs), "greater", COSINE_RANGE, metric)
    feats = torch.as_tensor(getattr(true_features, "features", true_features))
    if feats.ndim != 2 or feats.shape[0] < 2:
        raise MiAssertInputError(
            f"true_features must be [n_features >= 2, d]; got shape {tuple(feats.shape)}"
        )
    per_feature = M.max_cosine_per_feature(sae, feats).double().numpy()
    # copies of one true feature are one feature, not several
    feature_ids = [hashlib.blake2b(row.tobytes(), digest_size=16).hexdigest()
                   for row in feats.detach().cpu().double().numpy()]
    recovered = {f"share of features with max cos > {c}": round(float((per_feature > c).mean()), 4)
                 for c in (0.5, 0.8, 0.9, 0.99)}
    spec = ClaimSpec(
        hint=RECOVERY_HINT,
        claim=f"SAE decoder recovers {feats.shape[0]} true features", metric=metric,
        samples={s: Mean(per_feature, units=feature_ids, unit="features") for s in opts.seeds},
        threshold=threshold, alternative="greater", n_resamples=opts.n_resamples,
        min_units=opts.min_prompts, value_range=COSINE_RANGE, unit="features",
        settings={**M.describe_sae(sae), "n_true_features": int(feats.shape[0]),
                  "seeds": list(opts.seeds), "n_resamples": opts.n_resamples},
        model_info={"spec": "SAE dictionary (no model)"}, details=recovered)
    return spec.evaluate(opts.alpha)


assert_feature_recovery = asserting(check_feature_recovery)


# ----- feature firing ---------------------------------------------------------------------------
def feature_scores(handle: Any, sae: Any, tokens: Tensor, feature: int, hook: str,
                   position: int | None, exclude_bos: bool = True) -> np.ndarray:
    """Per-prompt activation of latent ``feature``: max over positions, or at ``position``."""
    f = D.feature_activations(handle, sae, tokens, feature, hook)  # [batch, pos]
    return scores_from_activations(handle, tokens, f, position, exclude_bos)


def scores_from_activations(handle: Any, tokens: Tensor, f: Tensor, position: int | None,
                            exclude_bos: bool = True) -> np.ndarray:
    """:func:`feature_scores` from the latent's activations ``f`` ``[batch, pos]`` already
    measured on ``tokens``."""
    if position is not None:
        if not -f.shape[1] <= position < f.shape[1]:
            raise MiAssertInputError(f"position {position} out of range for prompts of {f.shape[1]} tokens")
        return f[:, position].numpy()
    if exclude_bos:
        mask = M.bos_mask(handle, tokens).cpu()
        f = torch.where(mask, f, torch.full_like(f, -torch.inf))
    out = f.max(dim=1).values
    return torch.where(torch.isfinite(out), out, torch.zeros_like(out)).numpy()


def _dashboard_figure(handle: Any, sae: Any, feature: int, hook: str,
                      measured: Sequence[tuple[str, Tensor, Tensor]], extra: Any) -> dict[str, Any]:
    """The ``feature_dashboard`` figure from activations a claim measured (``(source, tokens,
    activations)``) and ``extra`` dashboard-only prompts (one more forward pass when given)."""
    batches = [(toks, acts) for _, toks, acts in measured]
    sources: dict[str, int] = {}
    for name, toks, _ in measured:
        sources[name] = sources.get(name, 0) + int(toks.shape[0])
    if extra is not None:
        extra_toks = handle.to_tokens(extra)
        batches.append((extra_toks, D.feature_activations(handle, sae, extra_toks, feature, hook)))
        sources["dashboard_prompts"] = int(extra_toks.shape[0])
    return D.build_dashboard(handle, sae, feature, hook, batches, sources=sources).figure()


def check_feature_fires(
    sae: Any,
    model: Any,
    positive: TokensLike,
    negative: TokensLike,
    feature: int,
    min_auroc: float = DEFAULT_MIN_AUROC,
    hook: str | None = None,
    *,
    position: int | None = None,
    alpha: float = 0.05,
    seeds: Sequence[int] | int | None = None,
    seed: int | None = None,
    n_resamples: int = 2000,
    min_prompts: int = DEFAULT_MIN_UNITS,
    dashboard_prompts: TokensLike | None = None,
) -> Evidence:
    """Claim: latent ``feature`` separates prompts with a concept (``positive``) from controls.

    Score per prompt: the latent's activation, max over positions (BOS left out) or at
    ``position``. AUROC (Mann-Whitney, ties count half) with a bootstrap over prompts that
    resamples positives and negatives apart; passes when the one-sided lower bound exceeds
    ``min_auroc`` (in ``[0, 1)``). Options: ``position``, ``alpha``, ``seeds`` (alias ``seed``),
    ``n_resamples``, ``min_prompts`` (distinct positive prompts, and as many distinct negative
    ones: each set is resampled apart; copies of a prompt count once).

    The evidence carries the latent's feature dashboard (figure ``"dashboard"``, kind
    ``"feature_dashboard"``: top-activating contexts, activation histogram and firing density,
    direct logit effect; :mod:`mi_assert.sae.dashboard`) over the positive and negative
    prompts, from the activations the claim already measured. ``dashboard_prompts`` (tokens or
    text, as the prompts) adds more prompts to the dashboard only (one more forward pass); they
    never enter the verdict or its numbers.
    """
    opts = _options(seeds, seed, alpha, n_resamples, min_prompts)
    M.check_is_sae(sae)
    feature = M.check_feature(sae, feature)
    metric = "AUROC (positive vs negative prompts)"
    threshold = check_threshold(_criterion("min_auroc", min_auroc), "greater", AUROC_RANGE, metric)
    handle = resolve_model(model)
    hook_name = M.check_hook(handle, sae, hook)
    pos_tokens = handle.to_tokens(positive)
    neg_tokens = handle.to_tokens(negative)
    n_pos, n_neg = len(set(prompt_ids(pos_tokens))), len(set(prompt_ids(neg_tokens)))
    if min(n_pos, n_neg) < opts.min_prompts:
        raise MiAssertInputError(
            f"AUROC needs at least min_prompts={opts.min_prompts} distinct positive and as many "
            f"distinct negative prompts (positives and negatives are resampled apart); got "
            f"{n_pos} distinct of {pos_tokens.shape[0]} positive and {n_neg} distinct of "
            f"{neg_tokens.shape[0]} negative prompts")
    pos_acts = D.feature_activations(handle, sae, pos_tokens, feature, hook_name)
    neg_acts = D.feature_activations(handle, sae, neg_tokens, feature, hook_name)
    pos = scores_from_activations(handle, pos_tokens, pos_acts, position)
    neg = scores_from_activations(handle, neg_tokens, neg_acts, position)
    dashboard = _dashboard_figure(handle, sae, feature, hook_name,
                                  [("positive", pos_tokens, pos_acts),
                                   ("negative", neg_tokens, neg_acts)], dashboard_prompts)
    stat = AUROC(pos, neg, positive_units=prompt_ids(pos_tokens),
                 negative_units=prompt_ids(neg_tokens))
    spec = ClaimSpec(
        hint=FIRES_HINT,
        claim=f"SAE latent {feature} at {hook_name} fires on the positive prompts", metric=metric,
        samples={s: stat for s in opts.seeds}, threshold=threshold, alternative="greater",
        n_resamples=opts.n_resamples, min_units=opts.min_prompts, value_range=AUROC_RANGE,
        settings={**M.describe_sae(sae, hook_name), "feature": feature,
                  "score": "max over positions" if position is None else f"position {position}",
                  "seeds": list(opts.seeds), "n_resamples": opts.n_resamples,
                  "interval": "bootstrap over prompts, positives and negatives resampled apart "
                              "(percentile)"},
        model_info=handle.describe(),
        details={"n_positive": int(pos.size), "n_negative": int(neg.size),
                 "mean_activation_positive": round(float(pos.mean()), 6),
                 "mean_activation_negative": round(float(neg.mean()), 6)},
        figures={"activations": {"kind": "hist", "data": [pos, neg], "labels": ["positive", "negative"],
                                 "xlabel": f"latent {feature} activation", "ylabel": "prompts",
                                 "title": f"latent {feature}: positive vs negative prompts"},
                 "dashboard": dashboard},
        hist_figure=False)
    return spec.evaluate(opts.alpha)


assert_feature_fires = asserting(check_feature_fires)


# ----- steering ----------------------------------------------------------------------------------
def check_feature_steering(
    sae: Any,
    model: Any,
    prompts: TokensLike,
    feature: int,
    metric: Callable[[Tensor], Tensor],
    scale: float = 10.0,
    min_effect: float = 0.0,
    *,
    hook: str | None = None,
    positions: Sequence[int] | None = None,
    alpha: float = 0.05,
    seeds: Sequence[int] | int | None = None,
    seed: int | None = None,
    n_resamples: int = 2000,
    min_prompts: int = DEFAULT_MIN_UNITS,
    dashboard_prompts: TokensLike | None = None,
) -> Evidence:
    """Claim: adding ``scale`` × latent ``feature``'s decoder row at the hook raises ``metric``.

    ``metric(logits) -> [batch]`` (the shared metric protocol). The effect per prompt is
    ``metric(steered) - metric(clean)`` (paired); the claim is that its mean exceeds
    ``min_effect`` (bootstrap over prompts). The decoder row is used as stored (SAELens SAEs
    usually have unit-norm rows, so ``scale`` is in activation units). For a claim that the
    metric falls, negate the metric. Options: ``hook``, ``positions`` (where the row is added;
    default every position), ``alpha``, ``seeds`` (alias ``seed``), ``n_resamples``,
    ``min_prompts``.

    The evidence carries the latent's feature dashboard (figure ``"dashboard"``, kind
    ``"feature_dashboard"``; :mod:`mi_assert.sae.dashboard`) over the prompts, from the
    activations at the hook captured in the clean run (no extra pass). ``dashboard_prompts``
    (tokens or text) adds more prompts to the dashboard only (one more forward pass); they never
    enter the verdict or its numbers.
    """
    opts = _options(seeds, seed, alpha, n_resamples, min_prompts)
    _sae_check(sae, "steering")
    feature = M.check_feature(sae, feature)
    scale = _criterion("scale", scale)
    threshold = _criterion("min_effect", min_effect)
    if not callable(metric):
        raise MiAssertInputError("metric must be a callable logits [batch, pos, d_vocab] -> [batch]")
    handle = resolve_model(model)
    metric = bind_metric(metric, handle)
    hook_name = M.check_hook(handle, sae, hook)
    toks = handle.to_tokens(prompts)
    direction = sae.W_dec[feature].detach()

    def steer(act: Tensor) -> Tensor:
        flat, reshaped = M._flatten_to_d_in(sae, act, f"activation at {hook_name!r}")
        add = (scale * direction).to(device=act.device, dtype=act.dtype)
        out = flat.clone()
        if positions is None:
            out = out + add
        else:
            pos = torch.as_tensor(list(positions), dtype=torch.long, device=act.device)
            if pos.numel() and (int(pos.max()) >= act.shape[1] or int(pos.min()) < -act.shape[1]):
                raise MiAssertInputError(f"positions {list(positions)} out of range for {act.shape[1]} tokens")
            out[:, pos] = out[:, pos] + add
        return out.reshape(act.shape) if reshaped else out

    clean_logits, cache = handle.run_with_cache(toks, [hook_name])  # the clean run, and the
    # activations at the hook for the dashboard
    clean_feats, _ = M.sae_forward(sae, cache[hook_name], f"activation at {hook_name!r}")
    dashboard = _dashboard_figure(handle, sae, feature, hook_name,
                                  [("prompts", toks, clean_feats[..., feature].float().cpu())],
                                  dashboard_prompts)
    steered_logits, _ = handle.run_with_edits(toks, {hook_name: steer})
    clean = _metric_values(metric, clean_logits, toks.shape[0])
    steered = _metric_values(metric, steered_logits, toks.shape[0])
    effect = Mean(steered - clean, units=prompt_ids(toks))
    spec = ClaimSpec(
        hint=STEERING_HINT,
        claim=f"steering with SAE latent {feature} (scale {scale:g}) at {hook_name} raises the metric",
        metric="metric(steered) - metric(clean) per prompt",
        samples={s: effect for s in opts.seeds}, threshold=threshold, alternative="greater",
        n_resamples=opts.n_resamples, min_units=opts.min_prompts,
        settings={**M.describe_sae(sae, hook_name), "feature": feature, "scale": scale,
                  "positions": "all" if positions is None else list(positions),
                  "metric": getattr(metric, "__name__", type(metric).__name__),
                  "seeds": list(opts.seeds), "n_resamples": opts.n_resamples},
        model_info=handle.describe(),
        details={"metric_clean": round(float(clean.mean()), 6),
                 "metric_steered": round(float(steered.mean()), 6)},
        figures={"dashboard": dashboard})
    return spec.evaluate(opts.alpha)


assert_feature_steering = asserting(check_feature_steering)


def _metric_values(metric: Callable[[Tensor], Tensor], logits: Tensor, batch: int) -> np.ndarray:
    values = torch.as_tensor(metric(logits)).detach().double().cpu().reshape(-1)
    if values.numel() != batch:
        raise MiAssertInputError(
            f"metric returned {values.numel()} values for {batch} prompts; a metric maps logits "
            "[batch, pos, d_vocab] to one value per prompt [batch]"
        )
    check_finite("metric values", values)
    return values.numpy()
