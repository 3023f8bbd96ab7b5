"""A fused standard-SAE encode/decode (ReLU SAE, SAELens "standard" architecture).

SAELens computes ``relu((x - b_dec) @ W_enc + b_enc) @ W_dec + b_dec`` as separate ops: a
subtraction, a matmul, a bias add and a ReLU each pass over the ``[N, d_sae]`` hidden tensor.
At large d_sae in bf16 those passes cost as much as the matmuls. Here ``b_dec`` is folded into the
encoder bias (``b_enc - b_dec @ W_enc``) and the bias and ReLU ride in the matmul's epilogue
(cuBLASLt via ``torch._addmm_activation``), so the work is two GEMMs.
"""

from __future__ import annotations

import torch
from torch import Tensor


def folded_encoder_bias(W_enc: Tensor, b_enc: Tensor, b_dec: Tensor,
                        apply_b_dec_to_input: bool = True) -> Tensor:
    """``b_enc - b_dec @ W_enc`` (or ``b_enc``): the bias of ``x @ W_enc`` without the shift."""
    if not apply_b_dec_to_input:
        return b_enc
    return b_enc - b_dec.to(torch.float32) @ W_enc.to(torch.float32)


def sae_encode(x: Tensor, W_enc: Tensor, b_enc_folded: Tensor) -> Tensor:
    """Feature activations ``relu(x @ W_enc + b)`` in one GEMM with a bias+ReLU epilogue."""
    flat = x.reshape(-1, x.shape[-1])
    acts = torch._addmm_activation(b_enc_folded.to(x.dtype), flat, W_enc, use_gelu=False)
    return acts.view(*x.shape[:-1], -1)


def sae_decode(acts: Tensor, W_dec: Tensor, b_dec: Tensor) -> Tensor:
    """Reconstruction ``acts @ W_dec + b_dec`` (bias in the GEMM epilogue)."""
    flat = acts.reshape(-1, acts.shape[-1])
    return torch.addmm(b_dec, flat, W_dec).view(*acts.shape[:-1], -1)


def sae_forward(x: Tensor, W_enc: Tensor, b_enc: Tensor, W_dec: Tensor, b_dec: Tensor,
                apply_b_dec_to_input: bool = True) -> tuple[Tensor, Tensor]:
    """(reconstruction, feature activations) of a standard ReLU SAE."""
    bias = folded_encoder_bias(W_enc, b_enc, b_dec, apply_b_dec_to_input)
    acts = sae_encode(x, W_enc, bias)
    return sae_decode(acts, W_dec, b_dec), acts


def sae_forward_unfused(x: Tensor, W_enc: Tensor, b_enc: Tensor, W_dec: Tensor, b_dec: Tensor
                        ) -> tuple[Tensor, Tensor]:
    """SAELens's ``StandardSAE`` op sequence, verbatim (the baseline the fused path is timed against)."""
    acts = torch.relu((x - b_dec) @ W_enc + b_enc)
    return acts @ W_dec + b_dec, acts
