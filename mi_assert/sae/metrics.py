"""Reconstruction metrics of an SAE, per token, on any backend.

Everything here is computed from three things: the activations ``x`` at the SAE's hook, the SAE's
feature activations and reconstruction ``x_hat`` (:func:`sae_forward`, device-agnostic; a plain
SAELens ``StandardSAE`` runs as two fused GEMMs, ``mi_assert.kernels.sae``), and the per-token
cross-entropy of the model with ``x`` replaced by ``x_hat`` or by zeros (:func:`spliced_token_ce`:
clean | SAE | zero variants of the batch in one pass on every backend; on supported
TransformerLens models the fast splice of ``mi_assert.kernels.sae_splice``).

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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from mi_assert.errors import MiAssertInputError, check_finite
from mi_assert.kernels.sae import fusable_standard_sae
from mi_assert.kernels.sae import sae_forward as fused_sae_forward
from mi_assert.shapes import SAEInput, SAELatents


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
        **({"sae_k": int(sae.cfg.k)} if isinstance(getattr(sae.cfg, "k", None), int) else {}),
        "sae_hook": hook_name,
        "sae_hash": weights_hash(sae),
        "sae_source": getattr(meta, "mi_assert_source", None) if meta is not None else None,
    }


def _flatten_to_d_in(sae: Any, acts: Tensor, what: str) -> tuple[Tensor, bool]:
    """``acts`` as ``[..., d_in]``, and whether per-head dimensions were flattened.

    Per-head activations ``[..., n_heads, d_head]`` (``attn.hook_z``, ``hook_q``/``k``/``v``)
    become ``[..., n_heads * d_head]`` head-major, SAELens's convention for z SAEs (its
    ``reshape_fn_in``: ``"... n_heads d_head -> ... (n_heads d_head)"``).
    """
    d_in = int(sae.cfg.d_in)
    if acts.shape[-1] == d_in:
        if acts.ndim >= 4:  # [batch, pos, head, d_head]: the SAE would read each head alone
            _refuse_per_head_sae(sae, acts, what)
        return acts, False
    if acts.ndim >= 2 and acts.shape[-1] * acts.shape[-2] == d_in:
        return acts.flatten(-2, -1), True
    n_heads, width = acts.shape[-2], acts.shape[-1]
    expected = (f"d_in = n_heads * d_head = {n_heads * width} ({n_heads} heads x {width}, "
                "flattened head-major as SAELens z SAEs read them)" if acts.ndim >= 4 else f"d_in={width}")
    raise MiAssertInputError(
        f"{what} has width {width} (shape {tuple(acts.shape)}) but the SAE's d_in is {d_in}; an "
        f"SAE for these activations needs {expected}. The SAE was trained on another hook or "
        "model: pass the hook it was trained on (sae.cfg.metadata.hook_name) and the matching model"
    )


def _refuse_per_head_sae(sae: Any, acts: Tensor, what: str) -> None:
    meta = getattr(sae.cfg, "metadata", None)
    head = getattr(meta, "hook_head_index", None) if meta is not None else None
    n_heads, d_head = acts.shape[-2], acts.shape[-1]
    which = f"one head (metadata.hook_head_index={head})" if head is not None else "one head's width"
    raise MiAssertInputError(
        f"{what} is per-head (shape {tuple(acts.shape)}: {n_heads} heads x d_head {d_head}) and "
        f"the SAE's d_in={d_head} reads {which}. SAEs on per-head hooks must read all heads "
        f"flattened (d_in = n_heads * d_head = {n_heads * d_head}, SAELens's hook_z convention); "
        "single-head SAEs are not supported"
    )


def as_sae_input(sae: Any, acts: Tensor, what: str = "activations") -> Tensor:
    """``acts`` with per-head dimensions flattened to the SAE's ``d_in`` (see
    :func:`_flatten_to_d_in`): ``[n, n_heads, d_head]`` -> ``[n, d_in]``, ``[batch, pos,
    n_heads, d_head]`` -> ``[batch, pos, d_in]``; activations already of width d_in unchanged."""
    return _flatten_to_d_in(sae, acts, what)[0]


@torch.no_grad()
def sae_forward(sae: Any, acts: SAEInput, what: str = "activations") -> tuple[SAELatents, SAEInput]:
    """Feature activations ``[..., d_sae]`` and reconstruction (``acts``'s shape, dtype, device).

    Device-agnostic: activations move to the SAE's device and the reconstruction comes back to
    ``acts.device``. A plain ``StandardSAE`` runs the fused kernel (same op sequence); every
    other SAE uses ``sae.encode``/``sae.decode`` (never ``forward``, whose optional error term
    would make the reconstruction exact).
    """
    flat, reshaped = _flatten_to_d_in(sae, acts, what)
    dev = torch.device(getattr(sae, "device", None) or sae.W_dec.device)
    if fusable_standard_sae(sae):  # SAELens's op sequence with the bias/ReLU in GEMM epilogues
        feats, recon = fused_sae_forward(flat.to(device=dev, dtype=sae.W_enc.dtype), sae.W_enc,
                                         sae.b_enc, sae.W_dec, sae.b_dec,
                                         bool(sae.cfg.apply_b_dec_to_input))
        if reshaped:
            recon = recon.reshape(acts.shape)
        return feats, recon.to(device=acts.device, dtype=acts.dtype)
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
    """Activations at ``hook`` (NaN/inf raise a clear error), from a pass that stops once the
    hook is computed (no later layers, no unembedding)."""
    cache = handle.capture_activations(tokens, [hook], check_nan=False)
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


def ce_per_prompt(token_ce: Tensor, tokens: Tensor, mask: Tensor,
                  positions: Sequence[int] | None = None) -> CELosses:
    """Per-prompt mean next-token CE over the counted predicting positions.

    ``token_ce`` is ``[3, batch, pos - 1]`` (clean, SAE-spliced, zero-ablated). As SAELens's
    ``get_recons_loss``: the CE predicted from a BOS position (outside ``mask``) is not counted;
    ``positions`` (default all) are the predicting positions whose next-token loss counts (e.g.
    the second half of repeated-token prompts).
    """
    for name, ce in (("clean", token_ce[0]), ("SAE-spliced", token_ce[1])):
        check_finite(f"{name} next-token losses (logits)", ce)
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
    pos_mask = keep.to(token_ce.device).double()
    per_prompt = (token_ce.double() * pos_mask).sum(-1) / pos_mask.sum(-1).clamp(min=1)
    clean, sae, zero = per_prompt.cpu().numpy()
    return CELosses(clean, sae, zero)


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


def clean_sae_zero(encode_decode: Callable[[Tensor], tuple[Tensor, Tensor]], mask: Tensor,
                   hook: str, stash: dict[str, Tensor]) -> Callable[[Tensor], Tensor]:
    """The splice's edit: clean activation ``[B, ...]`` -> ``[3B, ...]`` clean | SAE | zeros.

    The SAE's reconstruction replaces the activation at the counted positions only (BOS keeps
    its clean value, as SAELens's evals do); the clean activation, feature activations and
    reconstruction are kept in ``stash`` for the reconstruction statistics.
    """

    def edit(clean: Tensor) -> Tensor:
        check_finite(f"activation {hook!r}", clean)
        feats, recon = encode_decode(clean)
        stash.update(acts=clean.detach().clone(), feats=feats, recon=recon)
        keep = mask.to(clean.device).reshape(mask.shape + (1,) * (clean.ndim - 2))
        return torch.cat([clean, torch.where(keep, recon, clean), torch.zeros_like(clean)])

    return edit


def spliced_token_ce(handle: Any, tokens: Tensor, hook: str, edit: Callable[[Tensor], Tensor],
                     n_variants: int = 3) -> Tensor:
    """Per-token next-token CE ``[n_variants, B, T - 1]`` with ``hook`` replaced by ``edit``'s
    variants, on any backend.

    A supported TransformerLens model takes the fast splice (``mi_assert.kernels``: layers
    before the hook once, chunked cross-entropy without full logits); every other backend runs
    the batch stacked ``n_variants`` times through ``handle.run_with_edits``.
    """
    from mi_assert.kernels import fast_spliced_ce

    fast = fast_spliced_ce(handle, tokens, hook, edit)
    if fast is not None:
        return fast
    b = tokens.shape[0]
    logits, _ = handle.run_with_edits(tokens.repeat(n_variants, 1), {hook: lambda act: edit(act[:b])})
    return per_token_ce(logits, tokens.repeat(n_variants, 1)).view(n_variants, b, -1)


def measure_on_model(handle: Any, sae: Any, tokens: Tensor, hook: str, *, with_ce: bool = True,
                     exclude_bos: bool = True, ce_positions: Sequence[int] | None = None
                     ) -> tuple[ReconstructionSamples, CELosses | None]:
    """Everything ``run_evals`` reports, per token/prompt.

    With ``with_ce`` the SAE is spliced in once (:func:`spliced_token_ce`): clean | SAE spliced
    | zero-ablated variants of the batch share one pass (on TransformerLens models the layers
    before the hook run once), and the clean activation captured there feeds the
    reconstruction statistics. SAELens's ``run_evals`` spends four full passes on the same
    numbers.
    """
    tokens = handle.to_tokens(tokens)
    mask = bos_mask(handle, tokens) if exclude_bos else torch.ones_like(tokens, dtype=torch.bool)
    if not with_ce:
        acts = hook_activations(handle, tokens, hook)
        feats, recon = sae_forward(sae, acts, f"activation at {hook!r}")
        return reconstruction_samples(acts, feats, recon, mask), None
    if tokens.shape[1] < 2:
        raise MiAssertInputError("CE loss needs prompts of at least 2 tokens")
    stash: dict[str, Tensor] = {}
    edit = clean_sae_zero(lambda act: sae_forward(sae, act, f"activation at {hook!r}"), mask, hook, stash)
    token_ce = spliced_token_ce(handle, tokens, hook, edit)
    stats = reconstruction_samples(stash["acts"], stash["feats"], stash["recon"], mask)
    return stats, ce_per_prompt(token_ce, tokens, mask, ce_positions)


def check_hook(handle: Any, sae: Any, hook: str | None) -> str:
    """The canonical name of the SAE's hook on ``handle`` (``hook`` or the SAE's own), or a
    clear error when the model has no such hook."""
    name = sae_hook(sae, hook)
    try:
        return handle.parse_hook(name).name
    except MiAssertInputError as exc:
        origin = "given" if hook is not None else "from sae.cfg.metadata.hook_name"
        raise type(exc)(
            f"hook {name!r} ({origin}) is not a hook of model {handle.spec!r}: {exc}. Pass "
            "hook=... with a canonical TransformerLens name such as 'blocks.0.hook_resid_post'"
        ) from exc


def check_feature(sae: Any, feature: int) -> int:
    """``feature`` as an int index into the SAE's latents, or a clear error."""
    d_sae = int(sae.cfg.d_sae)
    if isinstance(feature, bool) or not isinstance(feature, (int, np.integer)) or not 0 <= feature < d_sae:
        raise MiAssertInputError(f"feature {feature!r} is out of range: the SAE has {d_sae} latents (0..{d_sae - 1})")
    return int(feature)
