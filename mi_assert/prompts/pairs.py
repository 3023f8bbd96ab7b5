"""Clean/corrupted prompt pairs for patching: induction pairs and factual-recall pairs.

Registered generators (use with ``make_split(model, NAME, seed)`` or ``prompts=NAME``):

``induction_pairs`` (token ids; works on any model, tokenizer or not)
    Tokens are drawn from ``handle.content_token_ids()``: ids valid as input and as an answer
    (below ``d_vocab`` and ``d_vocab_out``), never BOS or another special id. clean: ``[BOS] r_0 .. r_{L-1} r_0 .. r_{m-1}`` with distinct random tokens ``r``. At the
    last position (token ``x = r_{m-1}``) induction predicts ``r_m``, the token after the
    earlier copy of ``x``. The corrupted prompt is aligned token by token and differs only in
    the first half, so that induction predicts a different token there:

    * ``corruption="swap"`` (default): the earlier copy of ``x`` swaps places with another
      first-half token ``r_j`` (``j`` not ``m-1`` or ``m``), so ``x`` is now followed by
      ``r_{j+1}`` → wrong answer. The tokens the clean run attends to are unchanged; the
      difference reaches the induction head only through *which key* matches (the
      previous-token head's output at the positions after ``x``): a K-composition path.
    * ``corruption="next"``: the token after the earlier copy (``r_m``) is replaced by a
      fresh token ``r'`` → wrong answer ``r'``. The difference reaches the induction head
      through its *values* (the token embedding), not through the previous-token head.

    ``correct`` = the token induction predicts on the clean prompt, ``wrong`` = the one it
    predicts on the corrupted prompt; the metric position is the last one (-1).

``factual_recall`` (needs a tokenizer)
    ``"The capital of France is"`` → `` Paris``; corrupted: another country (`` Rome``).
    Only facts whose subject and answer are single tokens in the model's tokenizer are used;
    with fewer than two usable facts it raises a clear error (e.g. a word-level toy vocabulary).
"""

from __future__ import annotations

from typing import Any

import torch

from mi_assert.backends import ModelHandle, as_handle
from mi_assert.errors import MiAssertInputError
from mi_assert.prompts import PromptSet
from mi_assert.prompts.registry import register_generator

INDUCTION_CORRUPTIONS: tuple[str, ...] = ("swap", "next")


def induction_pairs(
    model: Any,
    seed: int = 0,
    n_prompts: int = 32,
    repeat_len: int | None = None,
    prefix_len: int | None = None,
    corruption: str = "swap",
) -> PromptSet:
    """Aligned clean/corrupted induction prompts (see the module docstring).

    ``repeat_len`` (L) defaults to a seeded draw in 8..20 (capped by the context and the
    vocabulary); ``prefix_len`` (m, how much of the sequence repeats) to a draw in 3..L-2.
    """
    handle: ModelHandle = as_handle(model)
    if corruption not in INDUCTION_CORRUPTIONS:
        raise MiAssertInputError(f"corruption={corruption!r} unknown; allowed: {', '.join(INDUCTION_CORRUPTIONS)}")
    if not isinstance(n_prompts, int) or n_prompts < 2:
        raise MiAssertInputError(f"n_prompts must be an int >= 2; got {n_prompts!r}")
    gen = torch.Generator().manual_seed(int(seed))
    bos = handle.bos_token_id
    vocab = handle.content_token_ids()  # answers are prompt tokens: valid as input and output
    n_special = 0 if bos is None else 1
    max_len = min(20, len(vocab) - 1, (handle.n_ctx - n_special) * 2 // 3)
    if max_len < 6:
        raise MiAssertInputError(
            f"model {handle.spec!r} ({len(vocab)} content token ids: d_vocab {handle.d_vocab}, "
            f"d_vocab_out {handle.d_vocab_out}, special ids {sorted(handle.special_token_ids)}; "
            f"n_ctx {handle.n_ctx}) is too small for induction pairs: need at least 7 distinct "
            "content tokens and 10 positions"
        )
    if repeat_len is None:
        repeat_len = int(torch.randint(8 if max_len >= 8 else 6, max_len + 1, (1,), generator=gen))
    if not 6 <= repeat_len <= len(vocab) - 1:
        raise MiAssertInputError(f"repeat_len must lie in 6..{len(vocab) - 1} for this vocabulary; got {repeat_len}")
    if prefix_len is None:
        prefix_len = int(torch.randint(3, repeat_len - 1, (1,), generator=gen))
    if not 2 <= prefix_len <= repeat_len - 2:
        raise MiAssertInputError(f"prefix_len must lie in 2..{repeat_len - 2}; got {prefix_len}")
    seq_len = n_special + repeat_len + prefix_len
    if seq_len > handle.n_ctx:
        raise MiAssertInputError(f"prompts of {seq_len} tokens exceed n_ctx={handle.n_ctx}; lower repeat_len")
    L, m = repeat_len, prefix_len
    # L + 1 distinct tokens per prompt: r_0..r_{L-1} and a fresh r' for the "next" corruption
    picks = torch.rand(n_prompts, len(vocab), generator=gen).argsort(dim=1)[:, : L + 1]
    tokens = vocab[picks]
    r, fresh = tokens[:, :L], tokens[:, L]
    first = r.clone()
    if corruption == "swap":
        # j in 0..L-2 except m-1 and m: x = r_{m-1} moves to first-half index j, followed by
        # r_{j+1}; j = m would also change the token the clean run attends to (a V path)
        choices = torch.tensor([j for j in range(L - 1) if j not in (m - 1, m)])
        j = choices[torch.randint(0, len(choices), (n_prompts,), generator=gen)]
        rows = torch.arange(n_prompts)
        first[rows, j] = r[:, m - 1]
        first[rows, m - 1] = r[rows, j]
        wrong = first[rows, j + 1]
        meta_extra: dict[str, Any] = {"swap_index": j}
    else:
        first[:, m] = fresh
        wrong = fresh
        meta_extra = {}
    correct = r[:, m]
    prefix = [] if bos is None else [torch.full((n_prompts, 1), bos, dtype=torch.long)]
    clean = torch.cat([*prefix, r, r[:, :m]], dim=1)
    corrupted = torch.cat([*prefix, first, r[:, :m]], dim=1)
    if bool((correct == wrong).any()):  # pragma: no cover - excluded by construction
        raise RuntimeError("induction pairs: correct and wrong answers coincide")
    return PromptSet(clean=clean, corrupted=corrupted, correct=correct, wrong=wrong, meta={
        "kind": "induction_pairs", "seed": int(seed), "n_prompts": n_prompts,
        "repeat_len": L, "prefix_len": m, "corruption": corruption, "position": -1, **meta_extra,
    })


@register_generator("induction_pairs")
def induction_pairs_generator(handle: ModelHandle, seed: int, **kwargs: Any) -> PromptSet:
    allowed = {"n_prompts", "repeat_len", "prefix_len", "corruption"}
    unknown = sorted(set(kwargs) - allowed)
    if unknown:
        raise MiAssertInputError(f"unknown induction_pairs option(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}")
    return induction_pairs(handle, seed, **kwargs)


#: (subject, answer) for "The capital of {subject} is" -> " {answer}"
CAPITALS: tuple[tuple[str, str], ...] = (
    ("France", "Paris"), ("Italy", "Rome"), ("Germany", "Berlin"), ("Spain", "Madrid"),
    ("Japan", "Tokyo"), ("Russia", "Moscow"), ("China", "Beijing"), ("Egypt", "Cairo"),
    ("England", "London"), ("Greece", "Athens"), ("Austria", "Vienna"), ("Ireland", "Dublin"),
    ("Poland", "Warsaw"), ("Norway", "Oslo"), ("Sweden", "Stockholm"), ("Portugal", "Lisbon"),
    ("Canada", "Ottawa"), ("Kenya", "Nairobi"), ("Peru", "Lima"), ("Cuba", "Havana"),
)
FACT_TEMPLATE = "The capital of {} is"


def factual_recall(model: Any, seed: int = 0, n_prompts: int = 16) -> PromptSet:
    """Capital-city prompts; corrupted = the same template with another country."""
    handle = as_handle(model)
    tok = handle.tokenizer
    if tok is None:
        raise MiAssertInputError(
            f"factual_recall prompts need a tokenizer; model {handle.spec!r} has none "
            "(use induction_pairs for token-id models)"
        )

    def encode(text: str) -> list[int]:
        return list(tok(text, add_special_tokens=False)["input_ids"])

    unk = getattr(tok, "unk_token_id", None)
    facts: list[tuple[int, int]] = []
    for subject, answer in CAPITALS:
        s_ids, a_ids = encode(" " + subject), encode(" " + answer)
        if len(s_ids) == 1 and len(a_ids) == 1 and unk not in (s_ids[0], a_ids[0]):
            facts.append((s_ids[0], a_ids[0]))
    if len(facts) < 2:
        raise MiAssertInputError(
            f"factual_recall: only {len(facts)} of {len(CAPITALS)} (country, capital) pairs are "
            f"single tokens in {handle.spec!r}'s tokenizer; need at least 2. This prompt set "
            "suits GPT-2-style BPE vocabularies, not toy word-level ones"
        )
    head, tail = FACT_TEMPLATE.split("{}")
    head_ids, tail_ids = encode(head.rstrip()), encode(tail)
    gen = torch.Generator().manual_seed(int(seed))
    i = torch.randint(0, len(facts), (n_prompts,), generator=gen)
    k = (i + torch.randint(1, len(facts), (n_prompts,), generator=gen)) % len(facts)
    subj = torch.tensor([f[0] for f in facts])
    ans = torch.tensor([f[1] for f in facts])
    bos = [] if handle.bos_token_id is None else [handle.bos_token_id]

    def build(subjects: torch.Tensor) -> torch.Tensor:
        return torch.tensor([[*bos, *head_ids, int(s), *tail_ids] for s in subjects], dtype=torch.long)

    return PromptSet(clean=build(subj[i]), corrupted=build(subj[k]), correct=ans[i], wrong=ans[k],
                     meta={"kind": "factual_recall", "seed": int(seed), "n_prompts": n_prompts,
                           "n_facts": len(facts), "template": FACT_TEMPLATE, "position": -1})


@register_generator("factual_recall")
def factual_recall_generator(handle: ModelHandle, seed: int, **kwargs: Any) -> PromptSet:
    unknown = sorted(set(kwargs) - {"n_prompts"})
    if unknown:
        raise MiAssertInputError(f"unknown factual_recall option(s) {', '.join(unknown)}; allowed: n_prompts")
    return factual_recall(handle, seed, **kwargs)
