"""A fused standard-SAE encode/decode (ReLU SAE, SAELens "standard" architecture).

SAELens computes ``relu((x - b_dec) @ W_enc + b_enc) @ W_dec + b_dec`` as separate ops: a
matmul, a bias add and a ReLU each pass over the ``[N, d_sae]`` hidden tensor. At large d_sae
those passes cost a large share of the matmuls' time. Here the bias and ReLU ride in the
matmul's epilogue (cuBLASLt via ``torch._addmm_activation``) and the decoder bias in the second
GEMM's, so the work is two GEMMs plus the shift of the small ``[N, d_in]`` input: the same
operations in the same order as SAELens, so features match it to float rounding.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor


def sae_encode(x: Tensor, W_enc: Tensor, b_enc: Tensor, b_dec: Tensor | None) -> Tensor:
    """Feature activations ``relu((x - b_dec) @ W_enc + b_enc)``: one GEMM with a bias+ReLU
    epilogue (``b_dec=None``: no input shift)."""
    flat = x.reshape(-1, x.shape[-1])
    if b_dec is not None:
        flat = flat - b_dec
    acts = torch._addmm_activation(b_enc, flat, W_enc, use_gelu=False)
    return acts.view(*x.shape[:-1], -1)


def sae_decode(acts: Tensor, W_dec: Tensor, b_dec: Tensor) -> Tensor:
    """Reconstruction ``acts @ W_dec + b_dec`` (bias in the GEMM epilogue)."""
    flat = acts.reshape(-1, acts.shape[-1])
    return torch.addmm(b_dec, flat, W_dec).view(*acts.shape[:-1], -1)


def sae_forward(x: Tensor, W_enc: Tensor, b_enc: Tensor, W_dec: Tensor, b_dec: Tensor,
                apply_b_dec_to_input: bool = True) -> tuple[Tensor, Tensor]:
    """(feature activations, reconstruction) of a standard ReLU SAE, the order of
    ``mi_assert.sae.metrics.sae_forward``."""
    acts = sae_encode(x, W_enc, b_enc, b_dec if apply_b_dec_to_input else None)
    return acts, sae_decode(acts, W_dec, b_dec)


def sae_forward_unfused(x: Tensor, W_enc: Tensor, b_enc: Tensor, W_dec: Tensor, b_dec: Tensor
                        ) -> tuple[Tensor, Tensor]:
    """SAELens's ``StandardSAE`` op sequence, verbatim (the baseline the fused path is timed
    against): (feature activations, reconstruction)."""
    acts = torch.relu((x - b_dec) @ W_enc + b_enc)
    return acts, acts @ W_dec + b_dec


def fusable_standard_sae(sae: Any) -> bool:
    """True when ``sae`` is a plain SAELens ``StandardSAE`` whose encode/decode is exactly
    :func:`sae_forward`: ReLU, no activation normalisation, no hook_z reshaping, no hooks
    attached to its hook points (a hook could change anything)."""
    if type(sae).__name__ != "StandardSAE" or not type(sae).__module__.startswith("sae_lens"):
        return False
    cfg = sae.cfg
    if getattr(cfg, "normalize_activations", "none") != "none":
        return False
    if not isinstance(getattr(sae, "activation_fn", None), torch.nn.ReLU):
        return False
    if getattr(sae, "hook_z_reshaping_mode", False) or getattr(sae, "d_head", None) is not None:
        return False
    for module in sae.modules():
        if getattr(module, "_forward_hooks", None) or getattr(module, "_forward_pre_hooks", None):
            return False
    return all(isinstance(getattr(sae, n, None), Tensor) for n in ("W_enc", "b_enc", "W_dec", "b_dec"))
