"""SAE claims: reconstruction, feature recovery, feature firing and feature steering.

Every assertion returns an :class:`~mi_assert.stats.evidence.Evidence` when the claim holds and
raises :class:`~mi_assert.stats.evidence.ClaimFailed` (an ``AssertionError``) with the evidence
table when it does not. Several criteria in one call form a family (Holm-corrected, each
criterion a member). Verdicts use one-sided bootstrap bounds: a criterion passes only when its
bound clears the threshold. The statistics are described in docs/sae.md.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from mi_assert.errors import MiAssertInputError, check_finite
from mi_assert.sae import metrics as M
from mi_assert.sae.resample import (
    WeightedBootstrap,
    bootstrap_auroc,
    ce_recovered_statistic,
    dead_fraction_statistic,
    ratio_of_sums,
)
from mi_assert.stats.bootstrap import Alternative, BootstrapResult
from mi_assert.stats.claims import evaluate_claim, evaluate_family
from mi_assert.stats.evidence import Evidence, SeedResult, raise_if_failed

#: checked when assert_sae_reconstruction is given no criterion (see docs/sae.md for why 0.7)
DEFAULT_MIN_EXPLAINED_VARIANCE = 0.7
DEFAULT_MIN_MMCS = 0.9
DEFAULT_MIN_AUROC = 0.9

TokensLike = Tensor | Sequence[Any] | Callable[[int], Any]


def _as_handle(model: Any) -> Any:
    from mi_assert.backends import as_handle

    return as_handle(model)


def _check_alpha(alpha: float) -> None:
    if not 0 < alpha < 0.5:
        raise MiAssertInputError(f"alpha must lie in (0, 0.5); got {alpha}")


def _check_seeds(seeds: Sequence[int] | int) -> list[int]:
    out = [seeds] if isinstance(seeds, int) else list(seeds)
    if not out or not all(isinstance(s, (int, np.integer)) for s in out):
        raise MiAssertInputError(f"seeds must be a non-empty list of ints; got {seeds!r}")
    return [int(s) for s in out]


def _check_hook(handle: Any, sae: Any, hook: str | None) -> str:
    name = M.sae_hook(sae, hook)
    try:
        return handle.parse_hook(name).name
    except MiAssertInputError as exc:
        origin = "given" if hook is not None else "from sae.cfg.metadata.hook_name"
        raise type(exc)(
            f"hook {name!r} ({origin}) is not a hook of model {handle.spec!r}: {exc}. Pass "
            "hook=... with a canonical TransformerLens name such as 'blocks.0.hook_resid_post'"
        ) from exc


def _sae_check(sae: Any, what: str) -> None:
    M.check_is_sae(sae)
    if M.is_transcoder(sae) and what in ("reconstruction", "steering"):
        raise MiAssertInputError(
            f"{M.architecture(sae)} SAEs (transcoders) read one hook and write another "
            f"(d_in={sae.cfg.d_in}, d_out={getattr(sae.cfg, 'd_out', '?')}), so a {what} claim "
            "that splices them in place at one hook is not supported. assert_feature_fires and "
            "assert_feature_recovery work on transcoders"
        )


def _family_member_from_rows(
    claim: str, metric: str, rows: dict[int, Callable[[float], BootstrapResult]],
    threshold: float, alternative: Alternative,
) -> Callable[[float], Evidence]:
    """A Holm family member from per-seed bootstraps (each a function of its level alpha).

    Every seed must pass (intersection over seeds): the bound is the worst seed's bound.
    """

    def member(alpha: float) -> Evidence:
        results = {seed: fn(alpha) for seed, fn in rows.items()}
        per_seed = [SeedResult.from_bootstrap(seed, res) for seed, res in results.items()]
        bounds = [r.bound for r in results.values()]
        bound = min(bounds) if alternative == "greater" else max(bounds)
        passed = all(s.passed for s in per_seed)
        return Evidence(
            claim=claim, metric=metric,
            estimate=float(np.mean([r.estimate for r in results.values()])),
            low=float(min(r.low for r in results.values())),
            high=float(max(r.high for r in results.values())),
            bound=float(bound), n=int(sum(r.n for r in results.values())),
            threshold=float(threshold), alpha=float(alpha), alternative=alternative,
            passed=passed, per_seed=per_seed,
            details={"p_value": max((r.p_value if r.p_value is not None else 1.0)
                                    for r in results.values()),
                     "method": next(iter(results.values())).method},
        )

    return member


def _mean_member(claim: str, metric: str, rows: dict[int, np.ndarray], threshold: float,
                 alternative: Alternative, bootstrap_seed: int) -> Callable[[float], Evidence]:
    def member(alpha: float) -> Evidence:
        return evaluate_claim(claim, metric, rows, threshold=threshold, alternative=alternative,
                              alpha=alpha, bootstrap_seed=bootstrap_seed, hist_figure=False)

    return member


# ----- reconstruction ---------------------------------------------------------------------------
class _SeedMeasurement:
    """Everything measured for one seed's prompts."""

    def __init__(self, stats: M.ReconstructionSamples, ce: M.CELosses | None, n_prompts: int):
        self.stats = stats
        self.ce = ce
        self.n_prompts = n_prompts

    def per_prompt_mean(self, values: np.ndarray) -> np.ndarray:
        mask = self.stats.mask
        counts = mask.sum(1)
        keep = counts > 0
        return (np.where(mask, values, 0.0).sum(1)[keep] / counts[keep])

    def per_prompt_sum(self, values: np.ndarray) -> np.ndarray:
        return np.where(self.stats.mask, values, 0.0).sum(1)


def assert_sae_reconstruction(
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
) -> Evidence:
    """Claim: the SAE reconstructs the activations at its hook well enough.

    Give a model and ``tokens`` (a ``[batch, pos]`` tensor, strings if the model has a
    tokenizer, or a callable ``seed -> tokens`` evaluated for each of ``seeds``), or — without a
    model — ``activations`` (``[n, d_in]`` or ``[batch, pos, d_in]``, or a callable ``seed ->``
    those). Criteria (each optional; with none given, ``min_explained_variance=0.7``):

    * ``min_explained_variance``: pooled explained variance ``1 - Σ|x - x̂|² / Σ|x - x̄|²``
      (SAELens ≥ 6's formula; the legacy per-token and per-dimension variants are reported in
      ``details``). Bootstrap over prompts, recomputing the ratio.
    * ``max_mse``: mean over tokens of ``|x - x̂|²`` summed over dimensions (SAELens's ``mse``).
    * ``min_ce_loss_recovered``: ``(CE_zero - CE_sae) / (CE_zero - CE_clean)`` with the SAE's
      reconstruction spliced in at the hook and a zero-ablation baseline (model needed). The
      ratio needs CE_zero > CE_clean on the counted positions (``ce_positions``: the predicting
      positions whose loss counts; default all): where zero-ablating the hook does not hurt
      the loss the ratio is meaningless and a clear error says so.
    * ``max_ce_loss_increase``: mean per-prompt ``CE_sae - CE_clean`` (nats).
    * ``l0_range=(lo, hi)``: mean number of active latents per token lies in ``(lo, hi)``
      (two members: above ``lo``, below ``hi``).
    * ``max_dead_fraction``: share of latents that fire on no token (bootstrap over prompts).

    The hook is ``sae.cfg.metadata.hook_name`` unless ``hook`` is given. With ``exclude_bos``
    (default), positions holding the model's BOS token are neither spliced nor counted, as in
    SAELens's ``run_evals``. Every criterion is a Holm family member at family level ``alpha``;
    each seed must pass.
    """
    _check_alpha(alpha)
    _sae_check(sae, "reconstruction")
    seed_list = _check_seeds(seeds)
    criteria = {
        "min_explained_variance": min_explained_variance, "max_mse": max_mse,
        "min_ce_loss_recovered": min_ce_loss_recovered, "max_ce_loss_increase": max_ce_loss_increase,
        "l0_range": l0_range, "max_dead_fraction": max_dead_fraction,
    }
    if all(v is None for v in criteria.values()):
        min_explained_variance = DEFAULT_MIN_EXPLAINED_VARIANCE
        criteria["min_explained_variance"] = min_explained_variance
    for key in ("min_explained_variance", "max_mse", "min_ce_loss_recovered",
                "max_ce_loss_increase", "max_dead_fraction"):
        value = criteria[key]
        if value is not None and not (isinstance(value, (int, float)) and np.isfinite(value)):
            raise MiAssertInputError(f"{key} must be a finite number; got {value!r}")
    if l0_range is not None:
        if (not isinstance(l0_range, (tuple, list)) or len(l0_range) != 2
                or not l0_range[0] < l0_range[1]):
            raise MiAssertInputError(f"l0_range must be (low, high) with low < high; got {l0_range!r}")
    needs_model = min_ce_loss_recovered is not None or max_ce_loss_increase is not None

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
        handle = _as_handle(model)
        hook_name = _check_hook(handle, sae, hook)
    elif needs_model:
        raise MiAssertInputError(
            "min_ce_loss_recovered / max_ce_loss_increase splice the SAE into a model: pass "
            "model= and tokens= instead of activations="
        )

    def measure(seed: int) -> _SeedMeasurement:
        if handle is not None:
            toks = tokens(seed) if callable(tokens) else tokens
            toks = handle.to_tokens(toks)
            stats, ce = M.measure_on_model(handle, sae, toks, hook_name, with_ce=needs_model,  # type: ignore[arg-type]
                                           exclude_bos=exclude_bos, ce_positions=ce_positions)
            if ce is not None and min_ce_loss_recovered is not None:
                _check_ce_baseline(ce, seed)
            return _SeedMeasurement(stats, ce, int(toks.shape[0]))
        acts = _check_activations(activations(seed) if callable(activations) else activations)
        feats, recon = M.sae_forward(sae, acts)
        stats = M.reconstruction_samples(acts, feats, recon)
        return _SeedMeasurement(stats, None, stats.n_prompts)

    # fixed tokens/activations: one measurement serves every seed (only the bootstrap differs)
    per_seed_data = callable(tokens) if handle is not None else callable(activations)
    shared = None if per_seed_data else measure(seed_list[0])
    measured = {seed: shared if shared is not None else measure(seed) for seed in seed_list}

    members: list[Callable[[float], Evidence]] = []

    def weighted_rows(make: Callable[[_SeedMeasurement], tuple[Any, int]],
                      threshold: float, alternative: Alternative, method: str = "BCa"
                      ) -> dict[int, Callable[[float], BootstrapResult]]:
        rows: dict[int, Callable[[float], BootstrapResult]] = {}
        for seed, m in measured.items():
            statistic, n_units = make(m)
            boot = WeightedBootstrap(statistic, n_units, n_resamples=n_resamples, seed=seed,
                                     method=method)
            rows[seed] = (lambda a, b=boot: b.result(threshold, alternative, a))
        return rows

    if min_explained_variance is not None:
        rows = weighted_rows(lambda m: (ratio_of_sums(m.per_prompt_sum(m.stats.sq_err),
                                                      m.per_prompt_sum(m.stats.sq_dev),
                                                      one_minus=True), m.stats.n_prompts),
                             float(min_explained_variance), "greater")
        members.append(_family_member_from_rows(
            f"explained variance > {min_explained_variance}", "explained variance (pooled)",
            rows, float(min_explained_variance), "greater"))
    if max_mse is not None:
        members.append(_mean_member(
            f"MSE < {max_mse}", "MSE (sum over dims, mean over tokens)",
            {s: m.per_prompt_mean(m.stats.sq_err) for s, m in measured.items()},
            float(max_mse), "less", seed_list[0]))
    if min_ce_loss_recovered is not None:
        rows = weighted_rows(lambda m: (ce_recovered_statistic(m.ce.clean, m.ce.sae, m.ce.zero),  # type: ignore[union-attr]
                                        len(m.ce.clean)),  # type: ignore[union-attr]
                             float(min_ce_loss_recovered), "greater")
        members.append(_family_member_from_rows(
            f"CE loss recovered > {min_ce_loss_recovered}", "CE loss recovered", rows,
            float(min_ce_loss_recovered), "greater"))
    if max_ce_loss_increase is not None:
        members.append(_mean_member(
            f"CE loss increase < {max_ce_loss_increase}", "CE loss increase (nats)",
            {s: m.ce.sae - m.ce.clean for s, m in measured.items()},  # type: ignore[union-attr]
            float(max_ce_loss_increase), "less", seed_list[0]))
    if l0_range is not None:
        l0_rows = {s: m.per_prompt_mean(m.stats.l0) for s, m in measured.items()}
        members.append(_mean_member(f"L0 > {l0_range[0]}", "L0 (active latents per token)",
                                    l0_rows, float(l0_range[0]), "greater", seed_list[0]))
        members.append(_mean_member(f"L0 < {l0_range[1]}", "L0 (active latents per token)",
                                    l0_rows, float(l0_range[1]), "less", seed_list[0]))
    if max_dead_fraction is not None:
        # percentile, not BCa: see WeightedBootstrap (the dead fraction's resamples only rise)
        rows = weighted_rows(lambda m: (dead_fraction_statistic(m.stats.fired), m.stats.n_prompts),
                             float(max_dead_fraction), "less", method="percentile")
        members.append(_family_member_from_rows(
            f"dead fraction < {max_dead_fraction}", "dead latent fraction", rows,
            float(max_dead_fraction), "less"))

    first = measured[seed_list[0]]
    details: dict[str, Any] = {
        "explained_variance (pooled, SAELens>=6)": _mean_over(measured, lambda m: m.stats.explained_variance["pooled"]),
        "explained_variance_legacy (per-token mean)": _mean_over(measured, lambda m: m.stats.explained_variance["legacy"]),
        "explained_variance_per_dim (sklearn)": _mean_over(measured, lambda m: m.stats.explained_variance["per_dim"]),
        "cosine(x, x_hat)": _mean_over(measured, lambda m: m.stats.cosine),
        "l2_ratio |x_hat|/|x|": _mean_over(measured, lambda m: m.stats.l2_ratio),
        "l0": _mean_over(measured, lambda m: float(m.stats.l0[m.stats.mask].mean())),
        "dead_fraction": _mean_over(measured, lambda m: float(1 - m.stats.fired.any(0).mean())),
        "n_prompts": first.stats.n_prompts, "n_tokens": first.stats.n_tokens,
    }
    if needs_model:
        details.update({
            "ce_clean": _mean_over(measured, lambda m: float(m.ce.clean.mean())),  # type: ignore[union-attr]
            "ce_with_sae": _mean_over(measured, lambda m: float(m.ce.sae.mean())),  # type: ignore[union-attr]
            "ce_zero_ablated": _mean_over(measured, lambda m: float(m.ce.zero.mean())),  # type: ignore[union-attr]
        })
    settings: dict[str, Any] = {**M.describe_sae(sae, hook_name), "seeds": seed_list,
                                "exclude_bos": exclude_bos, "n_resamples": n_resamples}
    if ce_positions is not None:
        settings["ce_positions"] = list(ce_positions)
    model_info = handle.describe() if handle is not None else {"spec": "activations (no model)"}
    figures = {
        "l0": {"kind": "hist", "data": first.stats.l0[first.stats.mask], "xlabel": "active latents per token",
               "ylabel": "tokens", "title": "SAE L0 per token"},
        "sq_err": {"kind": "hist", "data": first.stats.sq_err[first.stats.mask],
                   "xlabel": "|x - x_hat|^2", "ylabel": "tokens", "title": "reconstruction error per token"},
    }
    evidence = evaluate_family(
        members, alpha=alpha, claim=f"SAE reconstructs {hook_name or 'the activations'}",
        metric="reconstruction criteria", settings=settings, model_info=model_info,
        details=details, figures=figures,
    )
    evidence.details.update(details)
    return raise_if_failed(evidence, hint=(
        "An SAE that fails reconstruction at its own hook may have been trained on another "
        "model/hook, or on normalised activations whose scaling was not folded into its weights."))


def _check_ce_baseline(ce: M.CELosses, seed: int) -> None:
    gap = float(ce.zero.mean() - ce.clean.mean())
    if gap <= 0:
        raise MiAssertInputError(
            f"CE loss recovered is undefined here (seed {seed}): zero-ablating the hook gives CE "
            f"{ce.zero.mean():.4f}, no worse than the clean model's {ce.clean.mean():.4f}, so the "
            "ratio (CE_zero - CE_sae) / (CE_zero - CE_clean) has no meaningful denominator. Count "
            "only positions where the model uses the hook (ce_positions=..., e.g. the second "
            "half of repeated-token prompts) or use max_ce_loss_increase"
        )


def _mean_over(measured: dict[int, _SeedMeasurement], fn: Callable[[_SeedMeasurement], float]) -> float:
    return round(float(np.mean([fn(m) for m in measured.values()])), 6)


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


# ----- feature recovery -------------------------------------------------------------------------
def assert_feature_recovery(
    sae: Any,
    true_features: Any,
    min_mmcs: float = DEFAULT_MIN_MMCS,
    *,
    alpha: float = 0.05,
    seed: int = 0,
    n_resamples: int = 2000,
) -> Evidence:
    """Claim: the SAE's decoder recovers known features.

    MMCS (mean max cosine similarity): for each true feature (a row of ``true_features``,
    ``[n_features, d]``, or an object with ``.features``), the largest cosine similarity with any
    decoder direction; the claim is that their mean exceeds ``min_mmcs``, bootstrapping over
    features. This is a claim about the dictionary only: an SAE whose decoder rows are permuted
    recovers the same directions (and fails reconstruction instead).
    """
    _check_alpha(alpha)
    M.check_is_sae(sae)
    feats = getattr(true_features, "features", true_features)
    feats = torch.as_tensor(feats)
    if feats.ndim != 2 or feats.shape[0] < 2:
        raise MiAssertInputError(
            f"true_features must be [n_features >= 2, d]; got shape {tuple(feats.shape)}"
        )
    per_feature = M.max_cosine_per_feature(sae, feats).numpy()
    recovered = {f"share of features with max cos > {c}": round(float((per_feature > c).mean()), 4)
                 for c in (0.5, 0.8, 0.9, 0.99)}
    evidence = evaluate_claim(
        f"SAE decoder recovers {feats.shape[0]} true features", "max cosine similarity per feature (MMCS)",
        {seed: per_feature}, threshold=float(min_mmcs), alternative="greater", alpha=alpha,
        n_resamples=n_resamples, bootstrap_seed=seed,
        settings={**M.describe_sae(sae), "n_true_features": int(feats.shape[0])},
        model_info={"spec": "SAE dictionary (no model)"}, details=recovered,
    )
    return raise_if_failed(evidence, hint=(
        "Low MMCS: the decoder directions do not match the true features (too few latents, "
        "too little training, or the wrong sparsity penalty)."))


# ----- feature firing ---------------------------------------------------------------------------
def feature_scores(handle: Any, sae: Any, tokens: Tensor, feature: int, hook: str,
                   position: int | None, exclude_bos: bool = True) -> np.ndarray:
    """Per-prompt activation of latent ``feature``: max over positions, or at ``position``."""
    acts = M.hook_activations(handle, tokens, hook)
    feats, _ = M.sae_forward(sae, acts, f"activation at {hook!r}")
    f = feats[..., feature].detach().float().cpu()  # [batch, pos]
    if position is not None:
        if not -f.shape[1] <= position < f.shape[1]:
            raise MiAssertInputError(f"position {position} out of range for prompts of {f.shape[1]} tokens")
        return f[:, position].numpy()
    if exclude_bos:
        mask = M.bos_mask(handle, tokens).cpu()
        f = torch.where(mask, f, torch.full_like(f, -torch.inf))
    out = f.max(dim=1).values
    return torch.where(torch.isfinite(out), out, torch.zeros_like(out)).numpy()


def _check_feature(sae: Any, feature: int) -> int:
    d_sae = int(sae.cfg.d_sae)
    if isinstance(feature, bool) or not isinstance(feature, (int, np.integer)) or not 0 <= feature < d_sae:
        raise MiAssertInputError(f"feature {feature!r} is out of range: the SAE has {d_sae} latents (0..{d_sae - 1})")
    return int(feature)


def assert_feature_fires(
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
    seed: int = 0,
    n_resamples: int = 2000,
) -> Evidence:
    """Claim: latent ``feature`` separates prompts with a concept (``positive``) from controls.

    Score per prompt: the latent's activation, max over positions (BOS left out) or at
    ``position``. AUROC (Mann-Whitney, ties count half) with a stratified bootstrap over
    prompts; passes when the one-sided lower bound exceeds ``min_auroc``.
    """
    _check_alpha(alpha)
    M.check_is_sae(sae)
    feature = _check_feature(sae, feature)
    handle = _as_handle(model)
    hook_name = _check_hook(handle, sae, hook)
    pos_tokens = handle.to_tokens(positive)
    neg_tokens = handle.to_tokens(negative)
    pos = feature_scores(handle, sae, pos_tokens, feature, hook_name, position)
    neg = feature_scores(handle, sae, neg_tokens, feature, hook_name, position)
    res = bootstrap_auroc(pos, neg, threshold=float(min_auroc), alpha=alpha,
                          n_resamples=n_resamples, seed=seed)
    evidence = Evidence(
        claim=f"SAE latent {feature} at {hook_name} fires on the positive prompts",
        metric="AUROC (positive vs negative prompts)", estimate=res.estimate, low=res.low,
        high=res.high, bound=res.bound, n=res.n, threshold=float(min_auroc), alpha=alpha,
        alternative="greater", passed=res.passes(),
        per_seed=[SeedResult.from_bootstrap(seed, res)],
        settings={**M.describe_sae(sae, hook_name), "feature": feature,
                  "score": "max over positions" if position is None else f"position {position}",
                  "n_resamples": n_resamples},
        model=handle.describe(),
        details={"p_value": res.p_value, "method": res.method, "n_positive": int(pos.size),
                 "n_negative": int(neg.size), "mean_activation_positive": round(float(pos.mean()), 6),
                 "mean_activation_negative": round(float(neg.mean()), 6)},
        figures={"activations": {"kind": "hist", "data": [pos, neg], "labels": ["positive", "negative"],
                                 "xlabel": f"latent {feature} activation", "ylabel": "prompts",
                                 "title": f"latent {feature}: positive vs negative prompts"}},
    )
    return raise_if_failed(evidence, hint=(
        "The latent does not separate the prompts: check the feature index, the hook, and "
        "whether the concept appears in the positive prompts at all."))


# ----- steering ----------------------------------------------------------------------------------
def assert_feature_steering(
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
    seed: int = 0,
    n_resamples: int = 2000,
) -> Evidence:
    """Claim: adding ``scale`` × latent ``feature``'s decoder row at the hook raises ``metric``.

    ``metric(logits) -> [batch]`` (the shared metric protocol). The effect per prompt is
    ``metric(steered) - metric(clean)`` (paired); the claim is that its mean exceeds
    ``min_effect`` (bootstrap over prompts). The decoder row is used as stored (SAELens SAEs
    usually have unit-norm rows, so ``scale`` is in activation units). For a claim that the
    metric falls, negate the metric. ``positions`` restricts the addition (default: every
    position).
    """
    _check_alpha(alpha)
    _sae_check(sae, "steering")
    feature = _check_feature(sae, feature)
    if not np.isfinite(scale) or not np.isfinite(min_effect):
        raise MiAssertInputError(f"scale and min_effect must be finite; got {scale!r}, {min_effect!r}")
    if not callable(metric):
        raise MiAssertInputError("metric must be a callable logits [batch, pos, d_vocab] -> [batch]")
    handle = _as_handle(model)
    hook_name = _check_hook(handle, sae, hook)
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

    clean_logits = handle.forward(toks)
    steered_logits, _ = handle.run_with_edits(toks, {hook_name: steer})
    clean = _metric_values(metric, clean_logits, toks.shape[0])
    steered = _metric_values(metric, steered_logits, toks.shape[0])
    effect = steered - clean
    evidence = evaluate_claim(
        f"steering with SAE latent {feature} (scale {scale}) at {hook_name} raises the metric",
        "metric(steered) - metric(clean) per prompt", {seed: effect}, threshold=float(min_effect),
        alternative="greater", alpha=alpha, n_resamples=n_resamples, bootstrap_seed=seed,
        settings={**M.describe_sae(sae, hook_name), "feature": feature, "scale": scale,
                  "positions": "all" if positions is None else list(positions),
                  "metric": getattr(metric, "__name__", type(metric).__name__)},
        model_info=handle.describe(),
        details={"metric_clean": round(float(clean.mean()), 6),
                 "metric_steered": round(float(steered.mean()), 6)},
    )
    return raise_if_failed(evidence, hint=(
        "Steering did not move the metric: the latent's decoder direction may not be read by "
        "anything downstream of the hook, or the scale is too small."))


def _metric_values(metric: Callable[[Tensor], Tensor], logits: Tensor, batch: int) -> np.ndarray:
    values = torch.as_tensor(metric(logits)).detach().double().cpu().reshape(-1)
    if values.numel() != batch:
        raise MiAssertInputError(
            f"metric returned {values.numel()} values for {batch} prompts; a metric maps logits "
            "[batch, pos, d_vocab] to one value per prompt [batch]"
        )
    check_finite("metric values", values)
    return values.numpy()
