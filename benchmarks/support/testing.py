"""Reference models and metrics for the kernels' correctness tests and benchmarks (no hub).

* ``random_tl_model``: a random-weight HookedTransformer of any GPT-2-like shape.
* ``gpt2_twins``: the same random GPT-2 as a HuggingFace ``GPT2LMHeadModel`` (for nnsight) and a
  HookedTransformer built from it with TL's own weight conversion, so both compute one function.
* ``LogitDiff``: a metric following the team's metric protocol (``position``/``at_position``).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor


class LogitDiff:
    """``logits[b, position, correct[b]] - logits[b, position, wrong[b]]`` per prompt."""

    def __init__(self, correct: Tensor, wrong: Tensor, position: int = -1) -> None:
        self.correct = correct
        self.wrong = wrong
        self.position = position

    def at_position(self, logits: Tensor) -> Tensor:
        rows = torch.arange(logits.shape[0], device=logits.device)
        return logits[rows, self.correct] - logits[rows, self.wrong]

    def __call__(self, logits: Tensor) -> Tensor:
        return self.at_position(logits[:, self.position])

    def mean(self, logits: Tensor) -> Tensor:
        """TransformerLens's scalar patching metric (mean over prompts)."""
        return self(logits).mean()


def random_tl_model(
    n_layers: int = 2,
    d_model: int = 32,
    n_heads: int = 4,
    d_mlp: int | None = 128,
    d_vocab: int = 61,
    n_ctx: int = 24,
    seed: int = 0,
    normalization_type: str | None = "LN",
    act_fn: str = "gelu_new",
    device: str = "cpu",
    init_range: float = 0.02,
) -> Any:
    """A random-weight HookedTransformer; ``d_mlp=None`` makes it attention-only.

    Biases and LN parameters are randomised too (TL initialises them to 0/1), so a kernel that
    drops one of them fails the comparison.
    """
    from transformer_lens import HookedTransformer, HookedTransformerConfig

    cfg = HookedTransformerConfig(
        n_layers=n_layers, d_model=d_model, d_head=d_model // n_heads, n_heads=n_heads,
        d_mlp=d_mlp, d_vocab=d_vocab, n_ctx=n_ctx, act_fn=None if d_mlp is None else act_fn,
        normalization_type=normalization_type, attn_only=d_mlp is None, seed=seed,
        initializer_range=init_range, device=device,
    )
    model = HookedTransformer(cfg)
    return randomise_weights(model, seed)


def randomise_weights(model: Any, seed: int) -> Any:
    """Every parameter of a HookedTransformer drawn at random, in place, and the model in eval
    mode: biases ~ N(0, 0.1), norm weights ~ 1 + N(0, 0.1), matrices ~ N(0, 1/fan_in). TL
    initialises biases and norms to 0/1, which would hide a kernel that drops one of them."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith((".b", "b_Q", "b_K", "b_V", "b_O", "b_in", "b_out", "b_U")):
                p.copy_(0.1 * torch.randn(p.shape, generator=gen))
            elif name.endswith(".w"):
                p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=gen))
            else:
                p.copy_(torch.randn(p.shape, generator=gen) / p.shape[-2 if p.dim() > 1 else 0] ** 0.5)
    return model.eval()


def gpt2_twins(n_layers: int = 12, d_model: int = 768, n_heads: int = 12, d_vocab: int = 50257,
               n_ctx: int = 1024, seed: int = 0, device: str = "cpu") -> tuple[Any, Any]:
    """(HF ``GPT2LMHeadModel``, ``HookedTransformer``) with the same random weights.

    HF initialises the weights (GPT-2's scheme); TL's ``convert_gpt2_weights`` maps them, with no
    layer-norm folding or centering, so the two compute the same function.
    """
    from transformer_lens import HookedTransformer, HookedTransformerConfig
    from transformer_lens.pretrained.weight_conversions.gpt2 import convert_gpt2_weights
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    hf_cfg = GPT2Config(n_layer=n_layers, n_embd=d_model, n_head=n_heads, vocab_size=d_vocab,
                        n_positions=n_ctx, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    hf = GPT2LMHeadModel(hf_cfg).to(device).eval()
    cfg = HookedTransformerConfig(
        n_layers=n_layers, d_model=d_model, d_head=d_model // n_heads, n_heads=n_heads,
        d_mlp=4 * d_model, d_vocab=d_vocab, n_ctx=n_ctx, act_fn="gelu_new",
        normalization_type="LN", eps=hf_cfg.layer_norm_epsilon, device=device,
        default_prepend_bos=False,
    )
    tl = HookedTransformer(cfg)
    state = {k: v.detach().clone() for k, v in convert_gpt2_weights(hf, cfg).items()}
    state["unembed.b_U"] = torch.zeros(d_vocab, device=device)
    missing, unexpected = tl.load_state_dict(state, strict=False)
    if unexpected or [m for m in missing if not m.endswith(("attn.mask", "attn.IGNORE"))]:
        raise RuntimeError(f"GPT-2 conversion mismatch: missing={missing} unexpected={unexpected}")
    return hf, tl.to(device).eval()


def random_pair(d_vocab: int, batch: int, n_pos: int, seed: int = 0, device: str = "cpu"
                ) -> tuple[Tensor, Tensor, LogitDiff]:
    """Clean and corrupted token batches that differ in a few positions, and a metric."""
    gen = torch.Generator().manual_seed(seed)
    clean = torch.randint(1, d_vocab, (batch, n_pos), generator=gen)
    corrupted = clean.clone()
    n_swap = max(1, n_pos // 4)
    for b in range(batch):
        where = torch.randperm(n_pos, generator=gen)[:n_swap]
        corrupted[b, where] = torch.randint(1, d_vocab, (n_swap,), generator=gen)
    correct = torch.randint(0, d_vocab, (batch,), generator=gen)
    wrong = torch.randint(0, d_vocab, (batch,), generator=gen)
    metric = LogitDiff(correct.to(device), wrong.to(device), position=-1)
    return clean.to(device), corrupted.to(device), metric
