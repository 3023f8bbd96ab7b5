"""Prompts cut from the committed held-out chapters of the KJV corpus.

The held-out chapters (``heldout.txt`` beside the checkpoints) never reached tokenizer or model
training. They are split again in two: :data:`FIT` chapters (discovery: ``find_heads``) and
:data:`CONFIRM` chapters (claims), so a head picked on one half is asserted on the other.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from mi_assert.errors import MiAssertInputError
from mi_assert.zoo.natural.corpus import Chapter, read_chapters
from mi_assert.zoo.registry import CHECKPOINT_ROOT

NAME = "kjv-gpt2-4l"
FOLDER = CHECKPOINT_ROOT / NAME
HELDOUT_PATH = FOLDER / "heldout.txt"
FIT = "fit"
CONFIRM = "confirm"
SPLITS = (FIT, CONFIRM)


def heldout_chapters(split: str | None = None, path: Path = HELDOUT_PATH) -> list[Chapter]:
    """Held-out chapters; ``split`` 'fit' (even positions) or 'confirm' (odd), None for all."""
    if split is not None and split not in SPLITS:
        raise MiAssertInputError(f"split {split!r} unknown; allowed: {', '.join(SPLITS)} or None")
    if not path.exists():
        raise MiAssertInputError(f"{path} is missing: train the model with "
                                 "`python -m mi_assert.zoo.natural.train`")
    chapters = read_chapters(str(path))
    if split is None:
        return chapters
    return chapters[0::2] if split == FIT else chapters[1::2]


def tokenizer(path: Path | None = None) -> Any:
    """The model's own tokenizer (a ``GPT2TokenizerFast`` trained on the training chapters;
    every checkpoint folder holds the same one): from ``path`` or the last checkpoint."""
    from transformers import AutoTokenizer

    if path is None:
        steps = sorted((int(d.name[4:]), d) for d in FOLDER.glob("step*") if d.name[4:].isdigit())
        if not steps:
            raise MiAssertInputError(f"no checkpoint under {FOLDER}: train the model with "
                                     "`python -m mi_assert.zoo.natural.train`")
        path = steps[-1][1]
    tok = AutoTokenizer.from_pretrained(path)
    tok.model_max_length = 1 << 30  # whole chapters are tokenised here, then cut into windows
    return tok


def passages(n: int, n_tokens: int, split: str, seed: int = 0, tok: Any = None) -> list[str]:
    """``n`` distinct passages of natural text from the split's chapters that each tokenize to
    exactly ``n_tokens`` tokens (so string prompts batch without padding): token windows at
    seeded random offsets, decoded, and kept when re-encoding gives the same tokens and the
    text starts a word with its leading space (so two copies concatenate cleanly)."""
    if n < 1 or n_tokens < 2:
        raise MiAssertInputError(f"n must be >= 1 and n_tokens >= 2; got n={n}, n_tokens={n_tokens}")
    tok = tok if tok is not None else _default_tokenizer()
    rng = random.Random(seed)
    streams = [ids for ids in chapter_streams(split, tok) if len(ids) > n_tokens + 1]
    out: list[str] = []
    seen: set[str] = set()
    for _ in range(200 * n):
        ids = rng.choice(streams)
        start = rng.randrange(1, len(ids) - n_tokens)
        text = tok.decode(ids[start:start + n_tokens])
        if (text.startswith(" ") and text not in seen
                and tok(text)["input_ids"] == ids[start:start + n_tokens]
                and tok(text + text)["input_ids"] == ids[start:start + n_tokens] * 2):
            seen.add(text)
            out.append(text)
            if len(out) == n:
                return out
    raise MiAssertInputError(f"only {len(out)} distinct passages of {n_tokens} tokens in split {split!r}")


def repeated_passages(n: int, n_tokens: int, split: str, seed: int = 0, tok: Any = None) -> list[str]:
    """Strings ``passage + passage``: natural text seen twice (``2 * n_tokens`` tokens; the
    model's handle prepends BOS), for induction claims through the real tokenizer."""
    return [p + p for p in passages(n, n_tokens, split, seed, tok)]


TRAIN = "train"


_STREAMS: dict[tuple[int, str], list[list[int]]] = {}


def chapter_streams(split: str, tok: Any) -> list[list[int]]:
    """Token ids of every chapter of ``split`` ('fit', 'confirm' or 'train'), computed once per
    tokenizer object and split."""
    key = (id(tok), split)
    if key not in _STREAMS:
        from mi_assert.zoo.natural import corpus

        if split == TRAIN:
            chapters = corpus.split(corpus.parse_chapters(corpus.raw_text()))[0]
        else:
            chapters = heldout_chapters(split)
        _STREAMS[key] = [tok(c.text)["input_ids"] for c in chapters]
    return _STREAMS[key]


def text_windows(n: int, n_tokens: int, split: str, seed: int = 0, tok: Any = None) -> Any:
    """``[n, n_tokens + 1]`` token ids: BOS + a window of ``n_tokens`` tokens of running text at
    a seeded random offset of a random chapter. ``split``: 'fit' / 'confirm' (held-out, from
    the committed file) or 'train' (the training chapters: needs the Debian corpus package)."""
    import torch

    tok = tok if tok is not None else _default_tokenizer()
    rng = random.Random(seed)
    streams = [ids for ids in chapter_streams(split, tok) if len(ids) > n_tokens]
    rows = []
    for _ in range(n):
        ids = rng.choice(streams)
        start = rng.randrange(len(ids) - n_tokens + 1)
        rows.append([tok.bos_token_id, *ids[start:start + n_tokens]])
    return torch.tensor(rows, dtype=torch.long)


_TOKENIZER: list[Any] = []


def _default_tokenizer() -> Any:
    """The last checkpoint's tokenizer, loaded once per process."""
    if not _TOKENIZER:
        _TOKENIZER.append(tokenizer())
    return _TOKENIZER[0]


def ending_windows(n: int, n_tokens: int, split: str, ends: Any, seed: int = 0, tok: Any = None) -> Any:
    """``[n, n_tokens + 1]`` distinct token ids: BOS + ``n_tokens`` tokens of running text whose
    last token satisfies ``ends(token_string)`` (the tokenizer's string, ``Ġ`` for a leading
    space), at seeded random places of the split's chapters. For claims read at the last
    position (a concept present or absent there)."""
    import torch

    tok = tok if tok is not None else _default_tokenizer()
    rng = random.Random(seed)
    streams = [ids for ids in chapter_streams(split, tok) if len(ids) > n_tokens]
    names = tok.convert_ids_to_tokens(list(range(len(tok))))
    rows: list[list[int]] = []
    seen: set[tuple[int, ...]] = set()
    for _ in range(500 * n):
        ids = rng.choice(streams)
        end = rng.randrange(n_tokens, len(ids) + 1)
        window = tuple(ids[end - n_tokens:end])
        if window not in seen and ends(names[window[-1]]):
            seen.add(window)
            rows.append([tok.bos_token_id, *window])
            if len(rows) == n:
                return torch.tensor(rows, dtype=torch.long)
    raise MiAssertInputError(f"only {len(rows)} windows ending as asked in split {split!r}")


def capitalised_word(token: str) -> bool:
    """A token that starts a capitalised word (``ĠMoses``, ``ĠLORD``, ``ĠAnd``)."""
    word = token[1:] if token.startswith("Ġ") else ""
    return bool(word) and word[0].isupper()


def lowercase_word(token: str) -> bool:
    """A token that starts a lowercase word (``Ġthe``, ``Ġunto``)."""
    word = token[1:] if token.startswith("Ġ") else ""
    return bool(word) and word[0].islower()


def induction_pairs(n: int, n_tokens: int, split: str, seed: int = 0, tok: Any = None
                    ) -> tuple[list[str], list[str], list[int]]:
    """Clean/corrupted string pairs for patching an induction head on natural text.

    Clean: passage ``A`` then ``A``'s first ``k`` tokens again (``k`` drawn in the passage's
    second half, where ``A[k]`` starts a word); the model should continue with ``A[k]``, which it
    can only know from the first copy. Corrupted: another passage ``B`` of the same length, then
    the same ``k`` tokens of ``A``: nothing earlier to copy from. Returns (clean, corrupted,
    answer token ids); every string of a call has the same number of tokens (``n_tokens + k``
    with one ``k`` per call, seeded)."""
    tok = tok if tok is not None else _default_tokenizer()
    rng = random.Random(seed)
    texts = passages(3 * n, n_tokens, split, seed, tok)
    k = rng.randrange(n_tokens // 2, n_tokens - 1)
    clean: list[str] = []
    corrupted: list[str] = []
    answers: list[int] = []
    pool = list(texts)
    while pool and len(clean) < n:
        a = pool.pop(0)
        ids = tok(a)["input_ids"]
        prefix = tok.decode(ids[:k])
        answer = ids[k]
        if not tok.convert_ids_to_tokens(answer).startswith("Ġ") or tok(prefix)["input_ids"] != ids[:k]:
            continue
        b = next((t for t in pool if tok(t)["input_ids"][k] != answer), None)
        if b is None:
            break
        pool.remove(b)
        if (tok(a + prefix)["input_ids"] != ids + ids[:k]
                or len(tok(b + prefix)["input_ids"]) != n_tokens + k):
            continue
        clean.append(a + prefix)
        corrupted.append(b + prefix)
        answers.append(answer)
    if len(clean) < n:
        raise MiAssertInputError(f"only {len(clean)} induction pairs of {n_tokens} tokens in split {split!r}")
    return clean, corrupted, answers
