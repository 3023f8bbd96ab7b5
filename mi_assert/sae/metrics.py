"""Reconstruction metrics of an SAE, per token, on any backend.

Everything here is computed from three things: the activations ``x`` at the SAE's hook, the SAE's
feature activations and reconstruction ``x_hat`` (:func:`sae_forward`, device-agnostic: the one
function to time for SAE encode/decode speed), and the per-token cross-entropy of the model with
``x`` replaced by ``x_hat`` or by zeros (:func:`measure_on_model`: one forward pass of the batch
stacked clean | SAE | zero through ``handle.run_with_edits``, so it works on every backend).

Explained variance comes in three formulas (docs/sae.md, "Explained variance"):

* ``pooled`` (SAELens >= 6 ``explained_variance``): ``1 - sum_t |x_t - x_hat_t|^2 / sum_t |x_t - mean|^2``.
* ``legacy`` (SAELens ``explained_variance_legacy``, which SAELens calls the old, incorrect
  formula): the mean over tokens of ``1 - |x_t - x_hat_t|^2 / |x_t - mean|^2``.
* ``per_dim`` (scikit-learn's ``explained_variance_score``): the mean over dimensions of
  ``1 - var(x_d - x_hat_d) / var(x_d)``.

Claims use ``pooled``; the others are reported alongside.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from mi_assert.errors import MiAssertInputError, check_finite


# ----- the SAE itself ---------------------------------------------------------------------
def check_is_sae(sae: Any) -> None:
    """Raise a clear error unless ``sae`` looks like a SAELens SAE (encode, decode, W_dec, cfg)."""
    missing = [a for a in ("encode", "decode", "W_dec", "cfg") if not hasattr(sae, a)]
    if missing:
        raise MiAssertInputError(
            f"expected a SAELens SAE (sae_lens.SAE: encode, decode, W_dec, cfg); got "
            f"{type(sae).__name__} without {', '.join(missing)}. Load one with "
            "mi_assert.sae.load_sae(name_or_path) or sae_lens.SAE.load_from_disk(path)"
        )


def architecture(sae: Any) -> str:
    cfg = sae.cfg
    arch = getattr(cfg, "architecture", None)
    return str(arch() if callable(arch) else arch or type(sae).__name__)


def is_transcoder(sae: Any) -> bool:
    """Transcoders read one hook and write another (``d_out``): no in-place reconstruction."""
    return hasattr(sae.cfg, "d_out") or "transcoder" in architecture(sae)


def sae_hook(sae: Any, hook: str | None) -> str:
    """The hook the SAE reads: ``hook`` when given, else ``sae.cfg.metadata.hook_name``."""
    if hook is not None:
        return hook
    meta = getattr(sae.cfg, "metadata", None)
    name = getattr(meta, "hook_name", None) if meta is not None else None
    if not name:
        raise MiAssertInputError(
            "the SAE's config has no metadata.hook_name; pass hook='blocks.L.hook_resid_pre' "
            "(a canonical TransformerLens hook name)"
        )
    return str(name)


def weights_hash(sae: Any) -> str:
    """A short sha256 over the SAE's parameters (identifies the weights in evidence)."""
    digest = hashlib.sha256()
    for name, param in sorted(sae.state_dict().items()):
        if isinstance(param, Tensor):
            digest.update(name.encode())
            digest.update(param.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def describe_sae(sae: Any, hook: str | None = None) -> dict[str, Any]:
    """The SAE's identity for ``Evidence.settings``: architecture, sizes, hook, weights hash."""
    meta = getattr(sae.cfg, "metadata", None)
    try:
        hook_name = sae_hook(sae, hook)
    except MiAssertInputError:
        hook_name = None
    return {
        "sae_architecture": architecture(sae),
        "sae_d_in": int(sae.cfg.d_in),
        "sae_d_sae": int(sae.cfg.d_sae),
        "sae_hook": hook_name,
        "sae_hash": weights_hash(sae),
        "sae_source": getattr(meta, "mi_assert_source", None) if meta is not None else None,
    }


def _flatten_to_d_in(sae: Any, acts: Tensor, what: str) -> tuple[Tensor, bool]:
    """``acts`` as ``[..., d_in]``; per-head activations ``[..., head, d_head]`` are flattened."""
    d_in = int(sae.cfg.d_in)
    if acts.shape[-1] == d_in:
        return acts, False
    if acts.ndim >= 2 and acts.shape[-1] * acts.shape[-2] == d_in:
        return acts.flatten(-2, -1), True
    raise MiAssertInputError(
        f"{what} has width {acts.shape[-1]} (shape {tuple(acts.shape)}) but the SAE's d_in is "
        f"{d_in}: the SAE was trained on another hook or model. Pass the hook it was trained on "
        "(sae.cfg.metadata.hook_name) and the matching model"
    )


@torch.no_grad()
def sae_forward(sae: Any, acts: Tensor, what: str = "activations") -> tuple[Tensor, Tensor]:
    """Feature activations ``[..., d_sae]`` and reconstruction (``acts``'s shape, dtype, device).

    Device-agnostic: activations move to the SAE's device and the reconstruction comes back to
    ``acts.device``. Uses ``sae.encode``/``sae.decode`` (never ``forward``, whose optional
    error term would make the reconstruction exact). This is the function the GPU benchmark
    should time for SAE encode/decode.
    """
    flat, reshaped = _flatten_to_d_in(sae, acts, what)
    dev = torch.device(getattr(sae, "device", None) or sae.W_dec.device)
    # SAEs with hook_z reshaping flatten heads themselves; give them flat input and
    # skip their reshape (they expect [..., head, d_head] only when the mode is on).
    reshape_mode = bool(getattr(sae, "hook_z_reshaping_mode", False))
    if reshape_mode:
        sae.turn_off_forward_pass_hook_z_reshaping()
    try:
        feats = sae.encode(flat.to(dev))
        recon = sae.decode(feats)
    finally:
        if reshape_mode:
            sae.turn_on_forward_pass_hook_z_reshaping()
    if feats.is_sparse:
        feats = feats.to_dense()
    if reshaped:
        recon = recon.reshape(acts.shape)
    return feats, recon.to(device=acts.device, dtype=acts.dtype)


# ----- per-token reconstruction statistics ------------------------------------------------
@dataclass
class ReconstructionSamples:
    """Per-token quantities, grouped by prompt (the bootstrap resamples whole prompts).

    Arrays are ``[n_prompts, n_tokens]`` with ``mask`` marking the tokens that count (BOS
    positions are left out, as SAELens's evals do). ``fired`` is ``[n_prompts, d_sae]``: whether
    each feature fired on any counted token of the prompt.
    """

    sq_err: np.ndarray  # |x - x_hat|^2 (summed over dimensions)
    sq_dev: np.ndarray  # |x - mean(x)|^2, the mean over all counted tokens
    l0: np.ndarray  # number of non-zero features
    mask: np.ndarray
    fired: np.ndarray
    explained_variance: dict[str, float]
    cosine: float
    l2_ratio: float

    @property
    def n_prompts(self) -> int:
        return int(self.sq_err.shape[0])

    @property
    def n_tokens(self) -> int:
        return int(self.mask.sum())


def explained_variances(x: Tensor, x_hat: Tensor) -> dict[str, float]:
    """The three explained-variance formulas on ``[n_tokens, d]`` (see module docstring)."""
    x64, r64 = x.double(), (x - x_hat).double()
    dev = x64 - x64.mean(0)
    sq_err, sq_dev = r64.pow(2).sum(-1), dev.pow(2).sum(-1)
    pooled = 1.0 - float(sq_err.sum() / sq_dev.sum()) if float(sq_dev.sum()) > 0 else float("nan")
    ok = sq_dev > 0
    legacy = float((1.0 - sq_err[ok] / sq_dev[ok]).mean()) if bool(ok.any()) else float("nan")
    var_x = x64.var(0, unbiased=False)
    keep = var_x > 0
    per_dim = (float((1.0 - r64.var(0, unbiased=False)[keep] / var_x[keep]).mean())
               if bool(keep.any()) else float("nan"))
    return {"pooled": pooled, "legacy": legacy, "per_dim": per_dim}


def reconstruction_samples(
    x: Tensor, feats: Tensor, x_hat: Tensor, mask: Tensor | None = None
) -> ReconstructionSamples:
    """Per-token statistics from activations ``[n_prompts, n_tokens, ...]`` (or ``[n, d]``,
    each row its own prompt), feature activations and reconstructions of the same leading shape."""
    if x.ndim == 2:  # one token per "prompt" (synthetic data)
        x, feats, x_hat = x[:, None], feats[:, None], x_hat[:, None]
        mask = None if mask is None else mask[:, None]
    x = x.flatten(2).double() if x.ndim > 3 else x.double()
    x_hat = x_hat.flatten(2).double() if x_hat.ndim > 3 else x_hat.double()
    if mask is None:
        mask = torch.ones(x.shape[:2], dtype=torch.bool, device=x.device)
    mask = mask.to(x.device)
    if not bool(mask.any()):
        raise MiAssertInputError("no tokens left to measure (every position was a BOS token)")
    counted = x[mask]
    mean = counted.mean(0)
    sq_err = (x - x_hat).pow(2).sum(-1)
    sq_dev = (x - mean).pow(2).sum(-1)
    active = feats != 0  # != 0 (not > 0) so signed architectures such as AbsTopK count
    l0 = active.sum(-1)
    fired = (active & mask.to(active.device)[..., None]).any(1)
    xc, xhc = counted, x_hat[mask]
    cos = torch.nn.functional.cosine_similarity(xc, xhc, dim=-1, eps=1e-12)
    norm_in = xc.norm(dim=-1)
    ratio = xhc.norm(dim=-1) / torch.where(norm_in < 1e-4, torch.ones_like(norm_in), norm_in)
    m = mask.cpu().numpy()
    return ReconstructionSamples(
        sq_err=sq_err.cpu().numpy(), sq_dev=sq_dev.cpu().numpy(), l0=l0.float().cpu().numpy(),
        mask=m, fired=fired.cpu().numpy(), explained_variance=explained_variances(xc, xhc),
        cosine=float(cos.mean()), l2_ratio=float(ratio.mean()),
    )


# ----- the model side -----------------------------------------------------------------------
def bos_mask(handle: Any, tokens: Tensor) -> Tensor:
    """True where a token counts: positions holding the model's BOS id are left out."""
    bos = getattr(handle, "bos_token_id", None)
    if bos is None:
        return torch.ones_like(tokens, dtype=torch.bool)
    return tokens != bos


def hook_activations(handle: Any, tokens: Tensor, hook: str) -> Tensor:
    """Activations at ``hook`` (NaN/inf raise a clear error)."""
    _, cache = handle.run_with_cache(tokens, [hook])
    act = cache[handle.parse_hook(hook).name]
    check_finite(f"activation {hook!r}", act)
    return act


def per_token_ce(logits: Tensor, tokens: Tensor) -> Tensor:
    """Next-token cross-entropy ``[batch, pos - 1]`` (position t predicts token t + 1)."""
    logp = torch.log_softmax(logits[:, :-1].double(), dim=-1)
    return -logp.gather(-1, tokens[:, 1:, None].to(logp.device)).squeeze(-1)


@dataclass
class CELosses:
    """Per-prompt mean next-token CE (over counted positions) clean, SAE-spliced, zero-ablated."""

    clean: np.ndarray
    sae: np.ndarray
    zero: np.ndarray

    def recovered(self) -> float:
        return ce_recovered(self.clean, self.sae, self.zero)


def ce_recovered(clean: np.ndarray, sae: np.ndarray, zero: np.ndarray) -> float:
    """(CE_zero - CE_sae) / (CE_zero - CE_clean) of the means (SAELens's ``ce_loss_score``)."""
    denom = float(np.mean(zero) - np.mean(clean))
    return float(np.mean(zero) - np.mean(sae)) / denom if denom != 0 else float("nan")


def ce_from_logits(clean_logits: Tensor, sae_logits: Tensor, zero_logits: Tensor, tokens: Tensor,
                   mask: Tensor, positions: Sequence[int] | None = None) -> CELosses:
    """Per-prompt mean next-token CE over the counted predicting positions.

    As SAELens's ``get_recons_loss``: the CE predicted from a BOS position (outside ``mask``) is
    not counted; ``positions`` (default all) are the predicting positions whose next-token loss
    counts (e.g. the second half of repeated-token prompts).
    """
    for name, lg in (("clean", clean_logits), ("SAE-spliced", sae_logits)):
        check_finite(f"{name} logits", lg)
    keep = mask[:, :-1].clone()
    if positions is not None:
        chosen = torch.zeros(keep.shape[1], dtype=torch.bool)
        try:
            chosen[torch.as_tensor(list(positions), dtype=torch.long)] = True
        except IndexError as exc:
            raise MiAssertInputError(
                f"ce_positions {list(positions)} out of range: prompts of {tokens.shape[1]} tokens "
                f"have predicting positions 0..{tokens.shape[1] - 2}"
            ) from exc
        keep &= chosen.to(keep.device)
    if not bool(keep.any()):
        raise MiAssertInputError("no positions left for the CE loss (all BOS or outside ce_positions)")
    pos_mask = keep.to(clean_logits.device).double()
    counts = pos_mask.sum(-1).clamp(min=1)

    def per_prompt(logits: Tensor) -> np.ndarray:
        ce = per_token_ce(logits, tokens.to(logits.device))
        return ((ce * pos_mask).sum(-1) / counts).cpu().numpy()

    return CELosses(per_prompt(clean_logits), per_prompt(sae_logits), per_prompt(zero_logits))


def decoder_directions(sae: Any) -> Tensor:
    """Unit-norm decoder rows ``[d_sae, d_out]`` (zero rows stay zero)."""
    w = sae.W_dec.detach().float()
    return w / w.norm(dim=-1, keepdim=True).clamp(min=1e-12)


def max_cosine_per_feature(sae: Any, true_features: Tensor) -> Tensor:
    """For each true feature, its largest cosine similarity with any decoder direction."""
    feats = torch.as_tensor(true_features).detach().float().cpu()
    if feats.ndim != 2:
        raise MiAssertInputError(f"true_features must be [n_features, d]; got shape {tuple(feats.shape)}")
    dec = decoder_directions(sae).cpu()
    if feats.shape[1] != dec.shape[1]:
        raise MiAssertInputError(
            f"true_features have width {feats.shape[1]} but the SAE's decoder writes "
            f"{dec.shape[1]} dimensions: they must live in the same space"
        )
    check_finite("true_features", feats)
    norms = feats.norm(dim=-1, keepdim=True)
    if bool((norms == 0).any()):
        raise MiAssertInputError("true_features contains an all-zero row; every feature needs a direction")
    return ((feats / norms) @ dec.T).max(dim=1).values


def measure_on_model(handle: Any, sae: Any, tokens: Tensor, hook: str, *, with_ce: bool = True,
                     exclude_bos: bool = True, ce_positions: Sequence[int] | None = None
                     ) -> tuple[ReconstructionSamples, CELosses | None]:
    """Everything ``run_evals`` reports, per token/prompt.

    With ``with_ce`` it is one forward pass over the batch stacked three times — clean | SAE
    spliced | zero-ablated — that also captures the clean activations at the hook (the SAE runs
    once, on the middle copy, whose activation equals the clean one since nothing upstream
    differs). SAELens's ``run_evals`` spends four passes on the same numbers.
    """
    tokens = handle.to_tokens(tokens)
    mask = bos_mask(handle, tokens) if exclude_bos else torch.ones_like(tokens, dtype=torch.bool)
    if not with_ce:
        acts = hook_activations(handle, tokens, hook)
        feats, recon = sae_forward(sae, acts, f"activation at {hook!r}")
        return reconstruction_samples(acts, feats, recon, mask), None
    if tokens.shape[1] < 2:
        raise MiAssertInputError("CE loss needs prompts of at least 2 tokens")
    b = tokens.shape[0]
    stash: dict[str, Tensor] = {}

    def splice_and_ablate(act: Tensor) -> Tensor:
        clean = act[:b]
        check_finite(f"activation {hook!r}", clean)
        feats, recon = sae_forward(sae, act[b:2 * b], f"activation at {hook!r}")
        stash.update(acts=clean.detach().clone(), feats=feats, recon=recon)
        keep = mask.to(act.device).reshape(mask.shape + (1,) * (act.ndim - 2))
        return torch.cat([clean, torch.where(keep, recon, act[b:2 * b]), torch.zeros_like(act[2 * b:])])

    logits, _ = handle.run_with_edits(tokens.repeat(3, 1), {hook: splice_and_ablate})
    stats = reconstruction_samples(stash["acts"], stash["feats"], stash["recon"], mask)
    ce = ce_from_logits(logits[:b], logits[b:2 * b], logits[2 * b:], tokens, mask, ce_positions)
    return stats, ce
