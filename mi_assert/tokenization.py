"""Strings to token ids, with errors that say which string went wrong and how it tokenizes.

Two uses: string prompts (:meth:`mi_assert.backends.base.ModelHandle.to_tokens`: every prompt
of a batch must have the same number of tokens, because claims compare positions across
prompts) and answer strings (``logit_diff("Paris", "London")``: each answer must be exactly one
token). Strings are tokenized as given, without special tokens; GPT-2-style tokenizers mark a
leading space, so ``" Paris"`` and ``"Paris"`` are different tokens.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from mi_assert.errors import MiAssertInputError

#: how many offending prompts or words an error message lists before it says "..."
MAX_LISTED = 5

_WORD = re.compile(r"\s*\S+")


def encode(tokenizer: Any, text: str) -> list[int]:
    """``text``'s token ids, without BOS or other special tokens."""
    return [int(i) for i in tokenizer(text, add_special_tokens=False)["input_ids"]]


def pieces(tokenizer: Any, ids: Sequence[int]) -> list[str]:
    """Each id as the text it stands for (how a user sees where a word was split)."""
    return [tokenizer.decode([i]) for i in ids]


def unknown_token_id(tokenizer: Any) -> int | None:
    """The id a tokenizer gives words outside its vocabulary, or None.

    Byte-level BPE tokenizers (GPT-2 style) often reuse BOS/EOS as their ``unk`` token but never
    produce it from text, so an ``unk`` id equal to a BOS/EOS/PAD id does not count.
    """
    unk = getattr(tokenizer, "unk_token_id", None)
    specials = {getattr(tokenizer, f"{name}_token_id", None) for name in ("bos", "eos", "pad")}
    return None if unk is None or unk in specials else int(unk)


def _shorten(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _listed(items: Sequence[str]) -> str:
    shown = ", ".join(items[:MAX_LISTED])
    return shown + (f", ... ({len(items) - MAX_LISTED} more)" if len(items) > MAX_LISTED else "")


# ----- token ids -------------------------------------------------------------------------------
_TOKENS_ALLOWED = ("a LongTensor [batch, pos], lists of ints of one length, or strings (for a "
                   "model with a tokenizer)")


def as_token_tensor(inputs: Any) -> Tensor:
    """Token ids given as a tensor or nested lists, as a ``long`` tensor; what cannot be ids is
    refused (floating-point input too: casting would truncate 1.5 to 1 silently)."""
    if inputs is None:
        raise MiAssertInputError(f"no tokens given (None); pass {_TOKENS_ALLOWED}")
    try:
        tokens = inputs if isinstance(inputs, Tensor) else torch.as_tensor(inputs)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise MiAssertInputError(
            f"tokens must be {_TOKENS_ALLOWED}; got {type(inputs).__name__} that is not a "
            f"rectangular array of ids ({exc})"
        ) from exc
    if tokens.dtype == torch.bool or tokens.is_complex() or tokens.is_floating_point():
        raise MiAssertInputError(f"tokens must be integer ids; got dtype {tokens.dtype}. Pass {_TOKENS_ALLOWED}")
    return tokens.long()


# ----- prompts ---------------------------------------------------------------------------------
def encode_prompts(tokenizer: Any, prompts: Sequence[str], bos_token_id: int | None) -> list[list[int]]:
    """Token ids of each prompt (``bos_token_id`` first when given), all of one length.

    A batch whose prompts tokenize to different lengths, or that holds words outside the
    vocabulary, is refused with the prompts and words at fault.
    """
    encoded = [encode(tokenizer, p) for p in prompts]
    _check_known_words(tokenizer, prompts, encoded)
    if len({len(e) for e in encoded}) > 1:
        raise MiAssertInputError(_length_mismatch(tokenizer, prompts, encoded, bos_token_id is not None))
    if bos_token_id is None:
        return encoded
    return [[bos_token_id, *e] for e in encoded]


def split_words(tokenizer: Any, prompt: str) -> list[str]:
    """The whitespace-separated words of ``prompt`` that are more than one token, shown as
    ``' Christopher' -> [' Chris', 'topher']`` (each word with its leading space, as it
    tokenizes inside the prompt)."""
    out = []
    for word in _WORD.findall(prompt):
        ids = encode(tokenizer, word)
        if len(ids) > 1:
            out.append(f"{word!r} -> {pieces(tokenizer, ids)}")
    return out


def _length_mismatch(tokenizer: Any, prompts: Sequence[str], encoded: list[list[int]],
                     with_bos: bool) -> str:
    extra = 1 if with_bos else 0
    counted = "with BOS" if with_bos else "(no BOS)"
    lengths = [len(e) + extra for e in encoded]
    usual, n_usual = Counter(lengths).most_common(1)[0]
    odd = [i for i, n in enumerate(lengths) if n != usual]
    odd_text = [f"prompt {i} {_shorten(prompts[i])!r} has {lengths[i]}" for i in odd]
    splits = [f"prompt {i}: {'; '.join(words)}" for i in range(len(prompts))
              if (words := split_words(tokenizer, prompts[i]))]
    split_text = (f" Words that split into several tokens: {_listed(splits)}." if splits else
                  " No word splits into several tokens: the prompts have different numbers of words.")
    return (
        f"string prompts tokenize to different lengths: {n_usual} of {len(prompts)} prompts have "
        f"{usual} tokens {counted}, but {_listed(odd_text)}.{split_text} mi-assert compares "
        "positions across prompts, so every prompt in a batch must have the same number of "
        "tokens: use words that are single tokens (mind the leading space), or pass token ids"
    )


def _check_known_words(tokenizer: Any, prompts: Sequence[str], encoded: list[list[int]]) -> None:
    unk = unknown_token_id(tokenizer)
    if unk is None:
        return
    found = []
    for i, ids in enumerate(encoded):
        words = [w.strip() for w in _WORD.findall(prompts[i]) if unk in ids and _is_unknown(tokenizer, w, unk)]
        if words:
            found.append(f"prompt {i} {_shorten(prompts[i])!r}: {', '.join(repr(w) for w in words)}")
    if found:
        raise MiAssertInputError(
            f"string prompts hold words outside the tokenizer's vocabulary (they become the unknown "
            f"token {tokenizer.decode([unk])!r}, so the model cannot tell them apart): "
            f"{_listed(found)}. Use words in the vocabulary, or pass token ids"
        )


def _is_unknown(tokenizer: Any, word: str, unk: int) -> bool:
    """Whether ``word`` tokenizes to the unknown token without being that token's own text."""
    return unk in encode(tokenizer, word) and word.strip() != getattr(tokenizer, "unk_token", None)


# ----- answers ---------------------------------------------------------------------------------
def single_token_ids(tokenizer: Any, answers: Sequence[str], what: str) -> list[int]:
    """The one token id of each answer string; refuses strings that are not one known token."""
    ids, problems = single_token_problems(tokenizer, answers)
    if problems:
        raise MiAssertInputError(not_single_tokens_message(what, problems))
    return ids


def single_token_problems(tokenizer: Any, answers: Sequence[str]) -> tuple[list[int], list[str]]:
    """The token id of each answer that is one known token, and a description of each that is not."""
    unk = unknown_token_id(tokenizer)
    ids: list[int] = []
    problems: list[str] = []
    for answer in answers:
        enc = encode(tokenizer, answer)
        if len(enc) == 1 and (enc[0] != unk or not _is_unknown(tokenizer, answer, enc[0])):
            ids.append(enc[0])
        else:
            problems.append(_answer_problem(tokenizer, answer, enc, unk))
    return ids, problems


def not_single_tokens_message(what: str, problems: Sequence[str]) -> str:
    return (
        f"{what}: answers must each be exactly one token of the model's tokenizer; "
        f"{_listed(problems)}. Strings are tokenized as given: GPT-2-style tokenizers mark "
        "a leading space (' Mary' and 'Mary' are different tokens). Pick single-token "
        "answers or pass token ids"
    )


def _answer_problem(tokenizer: Any, answer: str, enc: list[int], unk: int | None) -> str:
    if not answer.strip():
        return f"{answer!r} is {len(enc)} tokens and no word"
    if len(enc) == 1:
        return f"{answer!r} is not in the vocabulary (it becomes the unknown token {tokenizer.decode([unk])!r})"
    how = f"{answer!r} is {len(enc)} tokens {pieces(tokenizer, enc)}"
    variant = answer.lstrip() if answer[:1].isspace() else " " + answer
    variant_ids = encode(tokenizer, variant)
    if len(variant_ids) == 1 and variant_ids[0] != unk:
        how += f" ({variant!r} is one token: id {variant_ids[0]})"
    return how
