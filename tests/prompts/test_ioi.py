"""The synthetic IOI task: alignment, corruptions, splits, tokenizers."""

from __future__ import annotations

import pytest
import torch

from mi_assert.errors import MiAssertInputError
from mi_assert.prompts import HELDOUT_OFFSET, ioi
from mi_assert.prompts.generators import available_generators


def _names_at(ps, key):  # token at a per-prompt position
    return ps.clean[torch.arange(len(ps)), ps.meta[key]]


@pytest.mark.parametrize("templates", ["fit", "heldout", "all"])
def test_prompt_positions_and_answers(templates: str) -> None:
    ps = ioi.ioi_prompt_set(None, seed=3, n_prompts=40, corruption="abc", templates=templates)
    assert ps.clean.shape == (40, ioi.PROMPT_WORDS + 1)
    assert (ps.clean[:, 0] == ioi.BOS_TOKEN_ID).all()
    assert torch.equal(_names_at(ps, "io_pos"), ps.correct)
    assert torch.equal(_names_at(ps, "s1_pos"), ps.wrong)
    assert torch.equal(_names_at(ps, "s2_pos"), ps.wrong)
    assert (ps.meta["end_pos"] == ioi.PROMPT_WORDS).all()
    assert (ps.correct != ps.wrong).all()
    assert ps.meta["order"].count("ABBA") == 20  # balanced name orders
    # ABBA: IO comes first in the first clause
    abba = torch.tensor([o == "ABBA" for o in ps.meta["order"]])
    assert ((ps.meta["io_pos"] < ps.meta["s1_pos"]) == abba).all()
    allowed = set(ioi._template_index(templates))
    assert set(ps.meta["template_ids"].tolist()) <= allowed
    for i in range(3):
        assert ioi.decode(ps.clean[i]) == ps.meta["text"][i]


def test_abc_corruption_replaces_exactly_the_three_names() -> None:
    ps = ioi.ioi_prompt_set(None, seed=1, n_prompts=64, corruption="abc", templates="all")
    rows = torch.arange(len(ps))
    slots = torch.stack([ps.meta["io_pos"], ps.meta["s1_pos"], ps.meta["s2_pos"]], 1)
    mask = torch.zeros_like(ps.clean, dtype=torch.bool)
    mask[rows[:, None], slots] = True
    assert torch.equal(ps.clean[~mask], ps.corrupted[~mask])
    fresh = ps.corrupted.gather(1, slots)
    for i in range(len(ps)):
        names = set(fresh[i].tolist())
        assert len(names) == 3  # three distinct names: no repeated subject
        assert not names & {int(ps.correct[i]), int(ps.wrong[i])}
        assert names <= set(ioi.WORD_TO_ID[n] for n in ioi.NAMES)


def test_swap_corruption_puts_io_in_the_second_clause() -> None:
    ps = ioi.ioi_prompt_set(None, seed=2, n_prompts=32, corruption="swap")
    rows = torch.arange(len(ps))
    diff = ps.clean != ps.corrupted
    assert (diff.sum(1) == 1).all()
    assert diff[rows, ps.meta["s2_pos"]].all()
    assert torch.equal(ps.corrupted[rows, ps.meta["s2_pos"]], ps.correct)


def test_same_seed_same_prompts_different_seed_different() -> None:
    a = ioi.ioi_prompt_set(None, seed=5, n_prompts=16)
    b = ioi.ioi_prompt_set(None, seed=5, n_prompts=16)
    c = ioi.ioi_prompt_set(None, seed=6, n_prompts=16)
    assert torch.equal(a.clean, b.clean) and torch.equal(a.corrupted, b.corrupted)
    assert not torch.equal(a.clean, c.clean)
    assert ioi.ioi_prompt_set(None, 5, 16, corruption="none").corrupted is None


def test_fit_and_heldout_templates_are_disjoint() -> None:
    assert not set(ioi.FIT_TEMPLATES) & set(ioi.HELDOUT_TEMPLATES)
    fit = ioi.ioi_generator(None, seed=0, n_prompts=64)
    held = ioi.ioi_generator(None, seed=HELDOUT_OFFSET, n_prompts=64)
    assert max(fit.meta["template_ids"]) < len(ioi.FIT_TEMPLATES)
    assert min(held.meta["template_ids"]) >= len(ioi.FIT_TEMPLATES)
    assert "ioi" in available_generators()


@pytest.mark.parametrize("kwargs, match", [
    ({"corruption": "shuffle"}, "corruption='shuffle' unknown; allowed: abc, swap, none"),
    ({"templates": "train"}, "templates='train' unknown"),
    ({"n_prompts": 0}, "n_prompts must be a positive int"),
])
def test_bad_arguments_name_what_is_allowed(kwargs, match) -> None:
    with pytest.raises(MiAssertInputError, match=match):
        ioi.ioi_prompt_set(None, **{"seed": 0, **kwargs})


def test_generator_rejects_unknown_options() -> None:
    with pytest.raises(MiAssertInputError, match="unknown IOI generator option"):
        ioi.ioi_generator(None, 0, n_names=3)


def test_training_batches_keep_names_and_end() -> None:
    gen = torch.Generator().manual_seed(0)
    batch = ioi.sample_training_batch(gen, 256, "fit", filler_noise=0.5)
    name_ids = torch.tensor([ioi.WORD_TO_ID[n] for n in ioi.NAMES])
    assert torch.isin(batch.io, name_ids).all() and (batch.io != batch.s).all()
    assert (batch.tokens[:, batch.end_pos] == ioi.WORD_TO_ID["to"]).all()
    # the IO appears once, the subject twice, in every prompt, whatever the filler noise did
    assert ((batch.tokens == batch.io[:, None]).sum(1) == 1).all()
    assert ((batch.tokens == batch.s[:, None]).sum(1) == 2).all()


def test_word_level_tokenizer_round_trip(tmp_path) -> None:
    from transformers import AutoTokenizer

    ioi.save_tokenizer(tmp_path)
    tok = AutoTokenizer.from_pretrained(str(tmp_path))
    assert ioi.is_ioi_tokenizer(tok)
    ps = ioi.ioi_prompt_set(None, seed=0, n_prompts=4, templates="all")
    for row, text in zip(ps.clean, ps.meta["text"], strict=True):
        assert tok(text, add_special_tokens=False)["input_ids"] == row[1:].tolist()
    # punctuation attached to a word is split off
    assert tok("store, John", add_special_tokens=False)["input_ids"] == [
        ioi.WORD_TO_ID["store"], ioi.WORD_TO_ID[","], ioi.WORD_TO_ID["John"]]
    assert tok.bos_token_id == ioi.BOS_TOKEN_ID


def test_foreign_tokenizer_spells_each_word_as_its_tokens() -> None:
    """With another model's tokenizer (tiny-gpt2's BPE) prompts still align token by token."""
    from transformer_lens import HookedTransformer, HookedTransformerConfig
    from transformers import AutoTokenizer

    from mi_assert.backends import as_handle
    from mi_assert.zoo.registry import get

    folder = get("tiny-gpt2").checkpoint_dir(0)  # committed with the zoo: a missing folder fails
    tok = AutoTokenizer.from_pretrained(str(folder))
    model = HookedTransformer(HookedTransformerConfig(
        n_layers=1, d_model=8, n_heads=1, d_head=8, d_vocab=len(tok), n_ctx=32, attn_only=True))
    model.set_tokenizer(tok)
    ps = ioi.ioi_prompt_set(as_handle(model), seed=0, n_prompts=8, corruption="swap", templates="fit")
    rows = torch.arange(len(ps))
    assert torch.equal(ps.clean[rows, ps.meta["io_pos"]], ps.correct)
    assert torch.equal(ps.corrupted[rows, ps.meta["s2_pos"]], ps.correct)
    assert tok.decode(ps.clean[0, 1:]).replace(" ,", ",").replace(" .", ".") == \
        ps.meta["text"][0].replace(" ,", ",").replace(" .", ".")
