"""A synthetic Indirect Object Identification (IOI) task with a small word-level vocabulary.

Prompts follow Wang et al. (2022): ``When Mary and John went to the store , John gave a drink
to`` → ``Mary``. The first clause names two people (the indirect object **IO** and the subject
**S**); the second clause repeats **S**; the answer is **IO**. Every template is exactly
:data:`PROMPT_WORDS` words, one token per word and per name/place/object slot, so with BOS every
prompt is ``PROMPT_WORDS + 1`` tokens long and clean and corrupted prompts align token by token.
The END token (the final ``to``) is always the last position.

Name orders: ``ABBA`` (IO first: ``A and B ... B gave ... to`` → A) and ``BABA`` (S first:
``B and A ... B gave ... to`` → A), half of each per call.

Templates are split into :data:`FIT_TEMPLATES` and :data:`HELDOUT_TEMPLATES`. The held-out ones
have structures (word orders and name positions, e.g. names at positions 5 and 7) that the
``ioi-small`` zoo models never saw in training.

Corruptions (``corrupted`` aligned with ``clean``; ``correct``/``wrong`` are always the clean
prompt's IO/S ids):

* ``"abc"`` — Wang et al.'s ABC distribution: the IO, S1 and S2 slots get three distinct fresh
  names, all different from the clean IO and S (``When Anna and Ben went ..., Kate gave ...``).
  No name repeats, so the prompt carries no information about which clean name is the answer:
  a model that uses the context has corrupted logit difference ≈ 0.
* ``"swap"`` — the S2 slot gets the IO name (``When Mary and John went ..., Mary gave ... to``):
  the corrupted prompt's answer is the clean S, so its logit difference is ≈ minus the clean one.
* ``"none"`` — no corrupted prompts.

With the IOI zoo models (or ``handle=None``) token ids are this module's vocabulary
(:data:`VOCAB`, BOS id 0). With another model that has a tokenizer (e.g. GPT-2), each word is
tokenized on its own (with a leading space); names, places and objects that are not a single
token there are left out of the pools, so positions still align.

``make_split(model, "ioi", seed)`` calls the registered generator with ``seed`` (fit) and
``seed + HELDOUT_OFFSET`` (held-out); with ``templates="auto"`` (its default) a seed at or above
``HELDOUT_OFFSET`` selects the held-out templates, any other seed the fit templates.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import torch
from torch import Tensor

from mi_assert.errors import MiAssertInputError
from mi_assert.prompts import HELDOUT_OFFSET, PromptSet
from mi_assert.prompts.registry import register_generator

SPECIAL_TOKENS: tuple[str, ...] = ("<bos>", "<eos>", "<pad>", "<unk>")
BOS_TOKEN_ID = 0
EOS_TOKEN_ID = 1
PAD_TOKEN_ID = 2
UNK_TOKEN_ID = 3

NAMES: tuple[str, ...] = (
    "Mary", "John", "Tom", "James", "Dan", "Sid", "Martin", "Amy", "Anna", "Paul", "Kate",
    "Lisa", "Mark", "Sarah", "David", "Alex", "Jack", "Ben", "Sam", "Max", "Emma", "Rose",
    "Ryan", "Luke", "Adam", "Eric", "Jane", "Laura", "Chris", "Mike", "Joe", "Tim",
)
PLACES: tuple[str, ...] = (
    "store", "garden", "park", "school", "office", "house", "station", "market", "hospital",
    "restaurant",
)
OBJECTS: tuple[str, ...] = (
    "drink", "ring", "book", "ball", "bag", "snack", "apple", "letter", "flower", "key",
)

#: slots: {A} first name of the first clause, {B} second, {S} the subject's repeat, {P}, {O}
FIT_TEMPLATES: tuple[str, ...] = (
    "When {A} and {B} went to the {P} , {S} gave a {O} to",
    "Then {A} and {B} were at the {P} . {S} gave a {O} to",
    "While {A} and {B} were at the {P} , {S} handed a {O} to",
    "{A} and {B} went to the {P} . Later {S} gave a {O} to",
    "{A} and {B} had a {O} at the {P} , {S} gave it to",
    "After {A} and {B} went to the {P} , {S} brought a {O} to",
)
HELDOUT_TEMPLATES: tuple[str, ...] = (
    "At the {P} , {A} and {B} met . {S} gave a {O} to",
    "{A} and {B} were at the {P} . Then {S} handed a {O} to",
    "{A} and {B} found a {O} at the {P} , {S} passed it to",
)
ALL_TEMPLATES: tuple[str, ...] = FIT_TEMPLATES + HELDOUT_TEMPLATES
#: words per template (without BOS); every prompt has PROMPT_WORDS + 1 tokens
PROMPT_WORDS = 14
CORRUPTIONS: tuple[str, ...] = ("abc", "swap", "none")
TEMPLATE_SPLITS: tuple[str, ...] = ("fit", "heldout", "all")

_SLOT_RE = re.compile(r"^\{([ABSPO])\}$")


def _template_words() -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for template in ALL_TEMPLATES:
        for word in template.split():
            if not _SLOT_RE.match(word):
                seen.setdefault(word, None)
    return tuple(seen)


TEMPLATE_WORDS: tuple[str, ...] = _template_words()
#: id -> word. Order is part of the checkpoint format: append only, never reorder.
VOCAB: tuple[str, ...] = SPECIAL_TOKENS + TEMPLATE_WORDS + NAMES + PLACES + OBJECTS
WORD_TO_ID: dict[str, int] = {w: i for i, w in enumerate(VOCAB)}
VOCAB_SIZE = len(VOCAB)

if len(set(VOCAB)) != VOCAB_SIZE:  # pragma: no cover - guards edits to the word lists
    raise RuntimeError("IOI vocabulary has duplicate words")
for _t in ALL_TEMPLATES:  # pragma: no cover - guards edits to the templates
    if len(_t.split()) != PROMPT_WORDS or not _t.endswith(" to"):
        raise RuntimeError(f"IOI template {_t!r} must have {PROMPT_WORDS} words and end in 'to'")


def word_to_id(word: str) -> int:
    """Id of ``word`` in :data:`VOCAB` (raises with the allowed words when unknown)."""
    if word not in WORD_TO_ID:
        raise MiAssertInputError(f"{word!r} is not in the IOI vocabulary; words: {', '.join(VOCAB)}")
    return WORD_TO_ID[word]


def id_to_word(token_id: int) -> str:
    if not 0 <= int(token_id) < VOCAB_SIZE:
        raise MiAssertInputError(f"token id {token_id} is outside the IOI vocabulary (0..{VOCAB_SIZE - 1})")
    return VOCAB[int(token_id)]


def decode(ids: Tensor | list[int]) -> str:
    """Space-joined words of IOI-vocabulary ids (BOS/PAD dropped)."""
    return " ".join(id_to_word(int(i)) for i in ids if int(i) not in (BOS_TOKEN_ID, PAD_TOKEN_ID))


def templates_for(split: str) -> tuple[str, ...]:
    if split == "fit":
        return FIT_TEMPLATES
    if split == "heldout":
        return HELDOUT_TEMPLATES
    if split == "all":
        return ALL_TEMPLATES
    raise MiAssertInputError(f"templates={split!r} unknown; allowed: {', '.join(TEMPLATE_SPLITS)} (or 'auto' in make_split)")


def _template_index(split: str) -> list[int]:
    """Indices into :data:`ALL_TEMPLATES` (template ids are global, so held-out ids are >= 6)."""
    chosen = templates_for(split)
    return [ALL_TEMPLATES.index(t) for t in chosen]


@dataclass(frozen=True)
class _Draw:
    """The random choices behind a batch of prompts (indices into the word pools)."""

    template: Tensor  # [n] global template ids
    io: Tensor  # [n] name index
    s: Tensor  # [n] name index
    abc: Tensor  # [n, 3] fresh name indices for IO, S1, S2 slots
    place: Tensor  # [n]
    obj: Tensor  # [n]
    io_first: Tensor  # [n] bool: ABBA (IO is the first name of the first clause)


def _draw(gen: torch.Generator, n: int, template_ids: list[int], n_names: int, n_places: int,
          n_objects: int, balanced_order: bool = True) -> _Draw:
    if n_names < 5:
        raise MiAssertInputError(f"IOI prompts need at least 5 single-token names; this tokenizer has {n_names}")
    tids = torch.tensor(template_ids, dtype=torch.long)
    template = tids[torch.randint(0, len(template_ids), (n,), generator=gen)]
    # five distinct names per prompt: IO, S, and three fresh ones for the ABC corruption
    names = torch.rand(n, n_names, generator=gen).argsort(dim=1)[:, :5]
    place = torch.randint(0, n_places, (n,), generator=gen)
    obj = torch.randint(0, n_objects, (n,), generator=gen)
    if balanced_order:
        order = torch.arange(n) % 2 == 0
        io_first = order[torch.randperm(n, generator=gen)]
    else:
        io_first = torch.rand(n, generator=gen) < 0.5
    return _Draw(template, names[:, 0], names[:, 1], names[:, 2:5], place, obj, io_first)


@dataclass(frozen=True)
class _Pools:
    """Token ids for each word: how the prompt is spelt in a given tokenizer."""

    names: Tensor  # [n_names] single-token ids
    places: Tensor
    objects: Tensor
    word_ids: dict[str, list[int]]  # template word (position-dependent spelling) -> ids
    bos: int | None
    name_words: tuple[str, ...]
    place_words: tuple[str, ...]
    object_words: tuple[str, ...]

    def word(self, word: str, first: bool) -> list[int]:
        return self.word_ids[("^" if first else "") + word]


def _native_pools() -> _Pools:
    word_ids = {w: [WORD_TO_ID[w]] for w in TEMPLATE_WORDS}
    word_ids.update({"^" + w: [WORD_TO_ID[w]] for w in TEMPLATE_WORDS})
    return _Pools(
        names=torch.tensor([WORD_TO_ID[w] for w in NAMES]),
        places=torch.tensor([WORD_TO_ID[w] for w in PLACES]),
        objects=torch.tensor([WORD_TO_ID[w] for w in OBJECTS]),
        word_ids=word_ids, bos=BOS_TOKEN_ID,
        name_words=NAMES, place_words=PLACES, object_words=OBJECTS,
    )


def _foreign_pools(tokenizer: Any, bos: int | None) -> _Pools:
    """Spell the task in another tokenizer, word by word (leading space except at the start)."""

    def encode(text: str) -> list[int]:
        return list(tokenizer(text, add_special_tokens=False)["input_ids"])

    def spaced(word: str) -> str:
        return word if word in (",", ".") else " " + word

    def single(words: tuple[str, ...]) -> tuple[tuple[str, ...], Tensor]:
        encoded = [(w, encode(" " + w)) for w in words]
        keep = [(w, ids[0]) for w, ids in encoded if len(ids) == 1]
        return tuple(w for w, _ in keep), torch.tensor([i for _, i in keep], dtype=torch.long)

    name_words, names = single(NAMES)
    place_words, places = single(PLACES)
    object_words, objects = single(OBJECTS)
    word_ids: dict[str, list[int]] = {}
    for w in TEMPLATE_WORDS:
        word_ids[w] = encode(spaced(w))
        word_ids["^" + w] = encode(w)
    if len(place_words) == 0 or len(object_words) == 0:
        raise MiAssertInputError("this tokenizer spells no IOI place or object as a single token")
    return _Pools(names, places, objects, word_ids, bos, name_words, place_words, object_words)


def _pools_for(handle: Any | None) -> _Pools:
    if handle is None:
        return _native_pools()
    from mi_assert.backends import as_handle

    h = as_handle(handle)
    tok = h.tokenizer
    if tok is not None and not is_ioi_tokenizer(tok):
        return _foreign_pools(tok, h.bos_token_id)
    if h.d_vocab < VOCAB_SIZE:
        raise MiAssertInputError(
            f"model {h.spec!r} has d_vocab {h.d_vocab} and no tokenizer; IOI prompts in the "
            f"mi-assert IOI vocabulary need d_vocab >= {VOCAB_SIZE} (use an ioi-small zoo model, "
            "or a model with a tokenizer)"
        )
    if h.n_ctx < PROMPT_WORDS + 1:
        raise MiAssertInputError(f"model {h.spec!r} has n_ctx {h.n_ctx}; IOI prompts need {PROMPT_WORDS + 1}")
    return _native_pools()


def is_ioi_tokenizer(tokenizer: Any) -> bool:
    """True when ``tokenizer`` uses exactly this module's vocabulary."""
    try:
        vocab = tokenizer.get_vocab()
    except AttributeError:
        return False
    return bool(vocab == WORD_TO_ID)


def _build(pools: _Pools, draw: _Draw, io_slot: Tensor, s1_slot: Tensor, s2_slot: Tensor
           ) -> tuple[Tensor, dict[str, Tensor]]:
    """Token ids for slot fillers given as indices into the pools; returns tokens and positions."""
    rows: list[list[int]] = []
    pos: dict[str, list[int]] = {"io_pos": [], "s1_pos": [], "s2_pos": [], "end_pos": []}
    for i in range(len(draw.template)):
        template = ALL_TEMPLATES[int(draw.template[i])]
        first_name = io_slot[i] if bool(draw.io_first[i]) else s1_slot[i]
        second_name = s1_slot[i] if bool(draw.io_first[i]) else io_slot[i]
        fill = {"A": int(pools.names[first_name]), "B": int(pools.names[second_name]),
                "S": int(pools.names[s2_slot[i]]), "P": int(pools.places[draw.place[i]]),
                "O": int(pools.objects[draw.obj[i]])}
        row: list[int] = [] if pools.bos is None else [pools.bos]
        where: dict[str, int] = {}
        for k, word in enumerate(template.split()):
            slot = _SLOT_RE.match(word)
            if slot:
                where[slot.group(1)] = len(row)
                row.append(fill[slot.group(1)])
            else:
                row.extend(pools.word(word, first=(k == 0)))
        io_key, s1_key = ("A", "B") if bool(draw.io_first[i]) else ("B", "A")
        pos["io_pos"].append(where[io_key])
        pos["s1_pos"].append(where[s1_key])
        pos["s2_pos"].append(where["S"])
        pos["end_pos"].append(len(row) - 1)
        rows.append(row)
    lengths = {len(r) for r in rows}
    if len(lengths) != 1:
        raise MiAssertInputError(
            f"IOI templates tokenize to different lengths {sorted(lengths)} in this tokenizer; "
            "ask for one template split at a time or a tokenizer that spells template words alike"
        )
    return torch.tensor(rows, dtype=torch.long), {k: torch.tensor(v) for k, v in pos.items()}


def ioi_prompt_set(
    handle: Any | None = None,
    seed: int = 0,
    n_prompts: int = 64,
    corruption: str = "abc",
    templates: str = "fit",
) -> PromptSet:
    """``n_prompts`` IOI prompts with ``corrupted`` per ``corruption`` ("abc" | "swap" | "none").

    ``correct`` holds the IO token id and ``wrong`` the S token id per prompt. ``meta`` holds
    ``template_ids`` (global ids into :data:`ALL_TEMPLATES`), ``order`` ("ABBA"/"BABA"), and
    the positions ``io_pos``, ``s1_pos``, ``s2_pos``, ``end_pos`` (tensors [n]; in the IOI
    vocabulary ``end_pos`` is always ``PROMPT_WORDS``), plus ``text`` (clean prompts as words).
    """
    if corruption not in CORRUPTIONS:
        raise MiAssertInputError(f"corruption={corruption!r} unknown; allowed: {', '.join(CORRUPTIONS)}")
    if not isinstance(n_prompts, int) or n_prompts < 1:
        raise MiAssertInputError(f"n_prompts must be a positive int; got {n_prompts!r}")
    template_ids = _template_index(templates)
    pools = _pools_for(handle)
    gen = torch.Generator().manual_seed(int(seed))
    draw = _draw(gen, n_prompts, template_ids, len(pools.names), len(pools.places), len(pools.objects))
    clean, positions = _build(pools, draw, draw.io, draw.s, draw.s)
    corrupted: Tensor | None = None
    if corruption == "abc":
        corrupted, _ = _build(pools, draw, draw.abc[:, 0], draw.abc[:, 1], draw.abc[:, 2])
    elif corruption == "swap":
        corrupted, _ = _build(pools, draw, draw.io, draw.s, draw.io)
    text = [
        " ".join(
            (pools.name_words[int(draw.io[i] if draw.io_first[i] else draw.s[i])] if w == "{A}" else
             pools.name_words[int(draw.s[i] if draw.io_first[i] else draw.io[i])] if w == "{B}" else
             pools.name_words[int(draw.s[i])] if w == "{S}" else
             pools.place_words[int(draw.place[i])] if w == "{P}" else
             pools.object_words[int(draw.obj[i])] if w == "{O}" else w)
            for w in ALL_TEMPLATES[int(draw.template[i])].split()
        )
        for i in range(n_prompts)
    ]
    meta: dict[str, Any] = {
        "kind": "ioi", "seed": int(seed), "n_prompts": n_prompts, "corruption": corruption,
        "templates": templates, "template_ids": draw.template.clone(),
        "order": ["ABBA" if bool(f) else "BABA" for f in draw.io_first],
        **positions, "text": text,
    }
    return PromptSet(clean=clean, corrupted=corrupted, correct=pools.names[draw.io].clone(),
                     wrong=pools.names[draw.s].clone(), meta=meta)


@register_generator("ioi")
def ioi_generator(handle: Any, seed: int, n_prompts: int = 64, corruption: str = "abc",
                  templates: str = "auto", **kwargs: Any) -> PromptSet:
    """The ``make_split``/``mi_prompts`` generator: ``templates="auto"`` picks the held-out
    templates for held-out seeds (``seed >= HELDOUT_OFFSET``) and the fit templates otherwise."""
    if kwargs:
        raise MiAssertInputError(
            f"unknown IOI generator option(s) {', '.join(sorted(kwargs))}; allowed: n_prompts, "
            "corruption, templates"
        )
    if templates == "auto":
        templates = "heldout" if int(seed) >= HELDOUT_OFFSET else "fit"
    return ioi_prompt_set(handle, seed, n_prompts=n_prompts, corruption=corruption, templates=templates)


@dataclass(frozen=True)
class IOIBatch:
    """A training batch in the IOI vocabulary: tokens [B, PROMPT_WORDS + 1], answer ids [B]."""

    tokens: Tensor
    io: Tensor
    s: Tensor
    end_pos: int


def sample_training_batch(gen: torch.Generator, batch_size: int, templates: str = "fit",
                          filler_noise: float = 0.0) -> IOIBatch:
    """A fresh random batch for training, drawn from ``gen`` (so training is reproducible).

    ``filler_noise``: probability that each non-slot word (except the final ``to``) is swapped
    for a random template word; it trains every template word's embedding to be ignorable
    without showing the held-out templates' structure.
    """
    pools = _native_pools()
    draw = _draw(gen, batch_size, _template_index(templates), len(NAMES), len(PLACES), len(OBJECTS),
                 balanced_order=False)
    tokens, positions = _build(pools, draw, draw.io, draw.s, draw.s)
    if filler_noise > 0:
        slot_mask = torch.zeros_like(tokens, dtype=torch.bool)
        slot_mask[:, 0] = True  # BOS
        slot_mask[:, -1] = True  # END
        filler_ids = torch.tensor([WORD_TO_ID[w] for w in TEMPLATE_WORDS])
        name_like = (tokens >= WORD_TO_ID[NAMES[0]])  # names, places, objects keep their slots
        swap = (torch.rand(tokens.shape, generator=gen) < filler_noise) & ~slot_mask & ~name_like
        random_words = filler_ids[torch.randint(0, len(filler_ids), tokens.shape, generator=gen)]
        tokens = torch.where(swap, random_words, tokens)
    return IOIBatch(tokens, pools.names[draw.io], pools.names[draw.s], PROMPT_WORDS)


def build_tokenizer() -> Any:
    """A ``PreTrainedTokenizerFast`` over :data:`VOCAB` (word level; punctuation split off)."""
    from tokenizers import Tokenizer, decoders, pre_tokenizers
    from tokenizers.models import WordLevel
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(WordLevel(vocab=dict(WORD_TO_ID), unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(),
                                                  pre_tokenizers.Punctuation()])
    core.decoder = decoders.WordPiece(prefix="##", cleanup=False)  # joins words with spaces
    # transformers leaves the fast tokenizer's __init__ unannotated
    return cast(Any, PreTrainedTokenizerFast)(
        tokenizer_object=core, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>",
        unk_token="<unk>", model_max_length=64,
    )


def save_tokenizer(folder: str | Path) -> Path:
    """Write the IOI tokenizer to ``folder`` (loadable with ``AutoTokenizer.from_pretrained``)."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    build_tokenizer().save_pretrained(str(out))
    return out
