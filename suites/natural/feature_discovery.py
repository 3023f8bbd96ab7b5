"""Find the SAE latent of ``kjv-gpt2-4l-l2-resid`` that marks a concept, on the *fit* split.

Concept: the last token is ``LORD`` (the KJV's rendering of the divine name, a word this corpus
uses about 7,000 times) against a window ending in any other capitalised word (names, ``God``,
sentence starts), so the latent must mark the word and not capitalisation. Every latent is
scored by its AUROC at the last position on fit-split windows; the best is returned with its
score. The claims then run on the confirm split, so the choice never saw their data.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from mi_assert.zoo.natural import prompts as P

SAE = "kjv-gpt2-4l-l2-resid"
N_WINDOWS = 64
N_TOKENS = 31


@dataclass(frozen=True)
class FoundFeature:
    feature: int
    fit_auroc: float
    top_boosted: list[tuple[str, float]]


def latent_at_last(handle, sae, tokens: torch.Tensor) -> torch.Tensor:
    """``[batch, d_sae]`` latent activations at the last position."""
    from mi_assert.sae.metrics import hook_activations, sae_forward

    acts = hook_activations(handle, tokens, sae.cfg.metadata.hook_name)[:, -1]
    feats, _ = sae_forward(sae, acts)
    return feats


def auroc_per_latent(pos: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
    """Mann-Whitney AUROC per latent (ties count half): ``[d_sae]``."""
    greater = (pos[:, None, :] > neg[None, :, :]).float().mean((0, 1))
    ties = (pos[:, None, :] == neg[None, :, :]).float().mean((0, 1))
    return greater + 0.5 * ties


def is_lord(token: str) -> bool:
    return token == "ĠLORD"


def other_capitalised(token: str) -> bool:
    return P.capitalised_word(token) and not is_lord(token)


def find_lord_feature(handle, sae) -> FoundFeature:
    pos = P.ending_windows(N_WINDOWS, N_TOKENS, P.FIT, is_lord, seed=0)
    neg = P.ending_windows(N_WINDOWS, N_TOKENS, P.FIT, other_capitalised, seed=0)
    with torch.no_grad():
        scores = auroc_per_latent(latent_at_last(handle, sae, pos), latent_at_last(handle, sae, neg))
        best = int(scores.argmax())
        direct = sae.W_dec[best] @ handle.model.W_U
        top = torch.topk(direct, 5)
    tok = P.tokenizer()
    boosted = [(tok.decode([int(i)]), round(float(v), 3)) for v, i in zip(top.values, top.indices, strict=True)]
    return FoundFeature(best, round(float(scores[best]), 4), boosted)
