"""Fixed, seeded evaluations of the trained zoo models (used by training, ``verify`` and tests).

Every number in ``checkpoints/manifest.json`` comes from one of these functions on a fixed
evaluation set, so ``python -m mi_assert.zoo verify`` can recompute it.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

#: repeat lengths at which induction behaviour is measured (training draws 8..32)
INDUCTION_EVAL_LENGTHS: tuple[int, ...] = (8, 16, 24, 32)
#: repeat lengths of the standard head scores (several, so a fixed-offset head cannot pass)
HEAD_SCORE_LENGTHS: tuple[int, ...] = (10, 20, 30)
INDUCTION_EVAL_SEED = 10_000
IOI_EVAL_SEED = 20_000
IOI_EVAL_PROMPTS = 512


def repeated_batch(gen: torch.Generator, batch: int, repeat_len: int, d_vocab: int,
                   bos: int = 0) -> Tensor:
    """``[BOS] + r + r`` with ``r`` uniform over every id except BOS (id 0)."""
    r = torch.randint(1, d_vocab, (batch, repeat_len), generator=gen)
    return torch.cat([torch.full((batch, 1), bos, dtype=torch.long), r, r], dim=1)


def second_half_targets(repeat_len: int) -> tuple[slice, slice]:
    """Positions whose next token is predictable by induction, and those next tokens.

    Tokens: ``0`` BOS, ``1..L`` first copy, ``L+1..2L`` second copy. The logits at positions
    ``L+1 .. 2L-1`` predict tokens ``L+2 .. 2L`` (the first token of the copy is not predictable).
    """
    return slice(repeat_len + 1, 2 * repeat_len), slice(repeat_len + 2, 2 * repeat_len + 1)


def repeated_loss_and_accuracy(logits: Tensor, tokens: Tensor, repeat_len: int) -> tuple[Tensor, Tensor]:
    pred_pos, target_pos = second_half_targets(repeat_len)
    pred = logits[:, pred_pos]
    target = tokens[:, target_pos]
    loss = torch.nn.functional.cross_entropy(pred.reshape(-1, pred.shape[-1]), target.reshape(-1))
    acc = (pred.argmax(-1) == target).float().mean()
    return loss, acc


@torch.no_grad()
def induction_metrics(model: Any, n_prompts: int = 64) -> dict[str, Any]:
    """Loss/accuracy on the repeated half and per-head scores, on fixed seeded prompts.

    Returns ``loss`` and ``accuracy`` (means over :data:`INDUCTION_EVAL_LENGTHS`), their values
    per length, and ``induction_scores`` / ``prev_token_scores``: ``{L: [[layer][head]]}`` for
    each ``L`` in :data:`HEAD_SCORE_LENGTHS`. The induction score is the standard one: mean
    attention from each second-copy query to the key just after its earlier copy (offset
    ``1 - L``); the previous-token score is the mean attention to the previous position.
    """
    d_vocab = model.cfg.d_vocab
    per_len: dict[str, dict[str, float]] = {}
    for length in INDUCTION_EVAL_LENGTHS:
        gen = torch.Generator().manual_seed(INDUCTION_EVAL_SEED + length)
        tokens = repeated_batch(gen, n_prompts, length, d_vocab)
        loss, acc = repeated_loss_and_accuracy(model(tokens), tokens, length)
        per_len[str(length)] = {"loss": float(loss), "accuracy": float(acc)}
    induction: dict[str, list[list[float]]] = {}
    prev: dict[str, list[list[float]]] = {}
    for length in HEAD_SCORE_LENGTHS:
        gen = torch.Generator().manual_seed(INDUCTION_EVAL_SEED + 1000 + length)
        tokens = repeated_batch(gen, 10, length, d_vocab)
        ind, prv = head_scores(model, tokens, length)
        induction[str(length)] = ind.tolist()
        prev[str(length)] = prv.tolist()
    return {
        "loss": sum(v["loss"] for v in per_len.values()) / len(per_len),
        "accuracy": sum(v["accuracy"] for v in per_len.values()) / len(per_len),
        "per_repeat_length": per_len,
        "induction_scores": induction,
        "prev_token_scores": prev,
    }


@torch.no_grad()
def head_scores(model: Any, tokens: Tensor, repeat_len: int) -> tuple[Tensor, Tensor]:
    """Induction and previous-token scores ``[n_layers, n_heads]`` on ``[BOS] + r + r``."""
    n_layers = model.cfg.n_layers
    names = [f"blocks.{layer}.attn.hook_pattern" for layer in range(n_layers)]
    _, cache = model.run_with_cache(tokens, names_filter=lambda n: n in names)
    seq = tokens.shape[1]
    query = torch.arange(repeat_len + 1, seq)  # second copy
    ind_key = query - repeat_len + 1
    prev_query = torch.arange(2, seq)  # skip BOS and the first token (whose previous is BOS)
    induction = torch.zeros(n_layers, model.cfg.n_heads)
    prev = torch.zeros(n_layers, model.cfg.n_heads)
    for layer, name in enumerate(names):
        pattern = cache[name]  # [batch, head, q, k]
        induction[layer] = pattern[:, :, query, ind_key].mean(dim=(0, 2))
        prev[layer] = pattern[:, :, prev_query, prev_query - 1].mean(dim=(0, 2))
    return induction, prev


def classify_induction_heads(metrics: dict[str, Any], threshold: float = 0.4) -> dict[str, Any]:
    """Which heads are induction / previous-token heads, by their minimum score over lengths.

    Taking the minimum over :data:`HEAD_SCORE_LENGTHS` excludes fixed-offset heads that score
    well at one repeat length only.
    """
    ind = torch.tensor([metrics["induction_scores"][str(L)] for L in HEAD_SCORE_LENGTHS]).amin(0)
    prv = torch.tensor([metrics["prev_token_scores"][str(L)] for L in HEAD_SCORE_LENGTHS]).amin(0)
    n_layers, n_heads = ind.shape

    def above(scores: Tensor) -> list[list[int]]:
        return [[layer, head] for layer in range(n_layers) for head in range(n_heads)
                if float(scores[layer, head]) > threshold]

    def best(scores: Tensor) -> list[int]:
        flat = int(scores.flatten().argmax())
        return [flat // n_heads, flat % n_heads]

    return {
        "threshold": threshold,
        "induction_heads": above(ind),
        "prev_token_heads": above(prv),
        "top_induction_head": best(ind),
        "top_induction_score_min_over_lengths": float(ind.max()),
        "top_prev_token_head": best(prv),
        "top_prev_token_score_min_over_lengths": float(prv.max()),
        # some seeds learn induction that fades with distance: per-head scores fall below 0.5
        # at long repeat lengths although accuracy stays high (see docs/zoo.md)
        "multi_length_induction": bool(float(ind[-1].max()) > 0.5),
        "top_induction_score_per_length": {
            str(L): max(metrics["induction_scores"][str(L)][-1]) for L in HEAD_SCORE_LENGTHS},
    }


@torch.no_grad()
def ioi_metrics(model: Any, n_prompts: int = IOI_EVAL_PROMPTS) -> dict[str, Any]:
    """IO-over-S accuracy and logit differences at END on fixed seeded IOI prompts.

    Per template split (``fit``, ``heldout``): ``accuracy`` (fraction with logit[IO] >
    logit[S]), ``top1`` (IO is the arg-max over the vocabulary), ``logit_diff`` (mean
    logit[IO] - logit[S]), ``abc_logit_diff`` (the same answer ids on the ABC-corrupted
    prompts: ≈ 0 when the model reads the names from the context) and ``swap_logit_diff``.
    """
    from mi_assert.prompts.ioi import ioi_prompt_set

    out: dict[str, Any] = {}
    for split in ("fit", "heldout"):
        abc = ioi_prompt_set(None, IOI_EVAL_SEED, n_prompts=n_prompts, corruption="abc", templates=split)
        swap = ioi_prompt_set(None, IOI_EVAL_SEED, n_prompts=n_prompts, corruption="swap", templates=split)
        assert torch.equal(abc.clean, swap.clean)  # same draw, different corruption
        # IOI prompt sets always carry their answers, and a corruption asked for is built
        assert abc.correct is not None and abc.wrong is not None
        assert abc.corrupted is not None and swap.corrupted is not None
        end = abc.clean.shape[1] - 1
        clean_logits = model(abc.clean)[:, end]
        clean_diff = _logit_diff(clean_logits, abc.correct, abc.wrong)
        out[split] = {
            "accuracy": float((clean_diff > 0).float().mean()),
            "top1": float((clean_logits.argmax(-1) == abc.correct).float().mean()),
            "logit_diff": float(clean_diff.mean()),
            "abc_logit_diff": float(_logit_diff(model(abc.corrupted)[:, end], abc.correct, abc.wrong).mean()),
            "swap_logit_diff": float(_logit_diff(model(swap.corrupted)[:, end], abc.correct, abc.wrong).mean()),
            "loss": float(torch.nn.functional.cross_entropy(clean_logits, abc.correct)),
        }
    return out


def _logit_diff(logits: Tensor, correct: Tensor, wrong: Tensor) -> Tensor:
    rows = torch.arange(logits.shape[0])
    return logits[rows, correct] - logits[rows, wrong]
