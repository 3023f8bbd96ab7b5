"""Synthetic superposition data with known features, and SAEs built from them.

The data follow the Sharkey et al. (2022) toy setting as replicated in SAE papers: ``n_features``
random unit-norm directions in ``d`` dimensions (more features than dimensions, so they are in
superposition); each sample activates each feature independently with probability
``mean_active / n_features`` (about ``mean_active`` active per sample) with a coefficient drawn
uniformly from ``magnitude``; the sample is the coefficient-weighted sum of active directions.
Sharkey et al. draw per-feature probabilities from a decaying distribution; here every feature has
the same probability so that every feature can be recovered (documented in docs/sae.md).

Everything is a pure function of ``seed`` (a ``torch.Generator`` on the CPU), so the zoo's
synthetic SAEs can be checked against the exact dictionary they were trained on without storing it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import Tensor

from mi_assert.errors import MiAssertInputError


@dataclass(frozen=True)
class SuperpositionConfig:
    """Shape of a synthetic superposition data set (defaults: Sharkey et al. replication)."""

    d: int = 256
    n_features: int = 512
    mean_active: float = 5.0
    magnitude: tuple[float, float] = (0.0, 1.0)

    def __post_init__(self) -> None:
        if self.d < 1 or self.n_features < 1:
            raise MiAssertInputError(f"d and n_features must be >= 1; got {self.d}, {self.n_features}")
        if not 0 < self.mean_active <= self.n_features:
            raise MiAssertInputError(
                f"mean_active must lie in (0, n_features={self.n_features}]; got {self.mean_active}"
            )
        lo, hi = self.magnitude
        if not 0 <= lo < hi:
            raise MiAssertInputError(f"magnitude must be (low, high) with 0 <= low < high; got {self.magnitude}")

    @property
    def interference_std(self) -> float:
        """Std of an inactive feature's read-out w_i . x (random unit vectors: cos ~ N(0, 1/d))."""
        lo, hi = self.magnitude
        mean_sq = (hi**3 - lo**3) / (3 * (hi - lo))  # E[c^2] for c ~ U(lo, hi)
        return math.sqrt(self.mean_active * mean_sq / self.d)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


#: the small shape used by calibration (128 dims / 256 features / 3 active): fast, same regime.
CALIBRATION_CONFIG = SuperpositionConfig(d=128, n_features=256, mean_active=3.0)


@dataclass
class SyntheticFeatures:
    """A fixed dictionary of true features and a sampler of activations built from it."""

    config: SuperpositionConfig
    seed: int
    features: Tensor  # [n_features, d], unit-norm rows

    def sample(self, n: int, seed: int) -> tuple[Tensor, Tensor]:
        """``n`` activations ``[n, d]`` and their true coefficients ``[n, n_features]``."""
        if n < 1:
            raise MiAssertInputError(f"need at least one sample; got n={n}")
        cfg = self.config
        gen = torch.Generator().manual_seed(1_000_003 * (self.seed + 1) + seed)
        p = cfg.mean_active / cfg.n_features
        active = torch.rand(n, cfg.n_features, generator=gen) < p
        lo, hi = cfg.magnitude
        mags = lo + (hi - lo) * torch.rand(n, cfg.n_features, generator=gen)
        coeffs = mags * active
        return coeffs @ self.features, coeffs

    def batches(self, batch_size: int, seed: int):  # type: ignore[no-untyped-def]
        """An endless iterator of activation batches (the SAELens trainer's data provider)."""
        step = 0
        while True:
            yield self.sample(batch_size, seed=seed * 1_000_000 + step)[0]
            step += 1


def make_superposition(config: SuperpositionConfig | None = None, seed: int = 0) -> SyntheticFeatures:
    """Draw ``config.n_features`` random unit-norm directions in ``config.d`` dimensions."""
    cfg = config or SuperpositionConfig()
    gen = torch.Generator().manual_seed(7919 * seed + 17)
    feats = torch.randn(cfg.n_features, cfg.d, generator=gen)
    feats = feats / feats.norm(dim=-1, keepdim=True)
    return SyntheticFeatures(config=cfg, seed=seed, features=feats)


def _metadata(hook_name: str, model_name: str) -> Any:
    from sae_lens.saes.sae import SAEMetadata

    return SAEMetadata(hook_name=hook_name, model_name=model_name, context_size=1, prepend_bos=False)


def true_sae(data: SyntheticFeatures, threshold_sigmas: float = 4.0) -> Any:
    """A JumpReLU SAE whose encoder and decoder are the exact true dictionary.

    Encoder rows read ``w_i . x``; an inactive feature reads only interference from the others
    (std :attr:`SuperpositionConfig.interference_std`), so the JumpReLU threshold is set
    ``threshold_sigmas`` interference stds above zero: features below it are missed, which is the
    best a linear-threshold encoder can do in superposition, not a tuned number.
    """
    from sae_lens.saes.jumprelu_sae import JumpReLUSAE, JumpReLUSAEConfig

    cfg = data.config
    sae = JumpReLUSAE(JumpReLUSAEConfig(
        d_in=cfg.d, d_sae=cfg.n_features, apply_b_dec_to_input=False,
        metadata=_metadata("synthetic", f"superposition-s{data.seed}"),
    ))
    with torch.no_grad():
        sae.W_dec.copy_(data.features)
        sae.W_enc.copy_(data.features.T)
        sae.b_enc.zero_()
        sae.b_dec.zero_()
        sae.threshold.fill_(threshold_sigmas * cfg.interference_std)
    return sae


def random_sae(d_in: int, d_sae: int, seed: int, architecture: str = "standard") -> Any:
    """A freshly initialised SAELens SAE (kaiming decoder, tied encoder): no training at all."""
    from sae_lens.saes.standard_sae import StandardSAE, StandardSAEConfig
    from sae_lens.saes.topk_sae import TopKSAE, TopKSAEConfig

    torch.manual_seed(seed)
    meta = _metadata("synthetic", "random")
    if architecture == "standard":
        return StandardSAE(StandardSAEConfig(d_in=d_in, d_sae=d_sae, metadata=meta))
    if architecture == "topk":
        return TopKSAE(TopKSAEConfig(d_in=d_in, d_sae=d_sae, k=8, metadata=meta))
    raise MiAssertInputError(f"architecture {architecture!r}: allowed 'standard' or 'topk'")


def shuffled_decoder_sae(sae: Any, seed: int) -> Any:
    """A copy of ``sae`` whose decoder rows are permuted (the encoder is untouched).

    The set of decoder directions is unchanged, so feature recovery (MMCS) stays exactly as
    high, but each latent now writes another feature's direction: reconstruction breaks.
    """
    import copy

    out = copy.deepcopy(sae)
    gen = torch.Generator().manual_seed(seed)
    perm = torch.randperm(out.W_dec.shape[0], generator=gen)
    with torch.no_grad():
        out.W_dec.copy_(out.W_dec[perm])
    return out


def basis_sae(d: int, hook: str, model_name: str = "", threshold: float = 0.1) -> Any:
    """A JumpReLU SAE whose latents are the standard basis: W_enc = W_dec = I.

    On a model whose activations at ``hook`` are one-hot codes (the planted zoo model's residual
    stream: token, position and previous-token one-hots of size 1, plus weight noise of about
    0.01), this is the exact dictionary: latent ``i`` is coordinate ``i``, so its ground truth is
    known. ``threshold`` (far above the noise, far below 1) keeps noise coordinates off.
    """
    from sae_lens.saes.jumprelu_sae import JumpReLUSAE, JumpReLUSAEConfig

    sae = JumpReLUSAE(JumpReLUSAEConfig(d_in=d, d_sae=d, apply_b_dec_to_input=False,
                                        metadata=_metadata(hook, model_name)))
    with torch.no_grad():
        sae.W_enc.copy_(torch.eye(d))
        sae.W_dec.copy_(torch.eye(d))
        sae.b_enc.zero_()
        sae.b_dec.zero_()
        sae.threshold.fill_(threshold)
    return sae
