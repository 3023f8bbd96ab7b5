"""Every zoo model loads through ``load_model`` and behaves like what it claims to be."""

from __future__ import annotations

import pytest
import torch

import mi_assert
from mi_assert.errors import MiAssertInputError, ModelUnavailableError
from mi_assert.prompts import ioi
from mi_assert.zoo import available, get


def _specs() -> list[str]:
    out = []
    for name in available():
        entry = get(name)
        seeds = entry.seeds[:1] if entry.kind in ("planted", "hf") else entry.seeds
        out += [f"{name}@s{s}" if entry.kind != "hf" else name for s in seeds]
    return out


@pytest.mark.parametrize("spec", [s for s in _specs() if get(s.split("@")[0]).kind != "hf"])
def test_native_zoo_model_loads_on_transformer_lens(spec: str) -> None:
    handle = mi_assert.load_model(spec, device="cpu")
    assert handle.backend == "transformer_lens"
    assert handle.bos_token_id == 0
    tokens = torch.tensor([[0, 5, 6, 7, 5, 6, 7]])
    logits = handle.forward(tokens)
    assert logits.shape == (1, 7, handle.d_vocab)
    assert torch.isfinite(logits).all()


def test_induction_model_shape_matches_its_description() -> None:
    handle = mi_assert.load_model("attn-only-2l-induction@s1", device="cpu")
    assert (handle.n_layers, handle.n_heads, handle.d_model, handle.d_head) == (2, 4, 64, 16)
    assert (handle.d_vocab, handle.n_ctx, handle.has_mlp) == (64, 80, False)
    assert handle.meta["model_seed"] == 1


def test_ioi_model_has_its_word_level_tokenizer() -> None:
    handle = mi_assert.load_model("ioi-small@s0", device="cpu")
    assert handle.has_mlp and handle.d_vocab == ioi.VOCAB_SIZE
    assert ioi.is_ioi_tokenizer(handle.tokenizer)
    prompts = ioi.ioi_prompt_set(handle, seed=0, n_prompts=4)
    from_strings = handle.to_tokens(prompts.meta["text"])
    assert torch.equal(from_strings.cpu(), prompts.clean)


def test_ioi_model_solves_heldout_prompts_through_the_handle() -> None:
    """An end-to-end check through the public path (handle + make_split), not the trainer's."""
    from mi_assert.prompts.generators import make_split

    handle = mi_assert.load_model("ioi-small@s2", device="cpu")
    split = make_split(handle, "ioi", seed=11, n_prompts=64)
    assert min(split.heldout.meta["template_ids"]) >= len(ioi.FIT_TEMPLATES)
    rows = torch.arange(64)
    for prompts in (split.fit, split.heldout):
        logits = handle.forward(prompts.clean)[:, -1]
        diff = logits[rows, prompts.correct] - logits[rows, prompts.wrong]
        assert (diff > 0).float().mean() >= 0.9
        corrupted = handle.forward(prompts.corrupted)[:, -1]
        abc = corrupted[rows, prompts.correct] - corrupted[rows, prompts.wrong]
        assert abs(float(abc.mean())) < 0.25 * float(diff.mean())


def test_intermediate_checkpoint_spec_and_missing_step() -> None:
    handle = mi_assert.load_model("attn-only-2l-induction@s0:step200", device="cpu")
    assert handle.spec == "attn-only-2l-induction@s0:step200"
    with pytest.raises(ModelUnavailableError, match="available steps: .*step100"):
        mi_assert.load_model("attn-only-2l-induction@s0:step150", device="cpu")
    with pytest.raises(MiAssertInputError, match="has seeds"):
        mi_assert.load_model("ioi-small@s7", device="cpu")


def test_tiny_gpt2_folder_loads_with_transformers() -> None:
    from transformers import AutoTokenizer, GPT2LMHeadModel

    folder = get("tiny-gpt2").checkpoint_dir(0)
    model = GPT2LMHeadModel.from_pretrained(str(folder), attn_implementation="eager").eval()
    tok = AutoTokenizer.from_pretrained(str(folder))
    assert tok.name_or_path == str(folder)  # reloadable by path (TL's get_tokenizer_with_bos)
    ids = tok("When Mary and John went to the store, John gave a drink to", return_tensors="pt")["input_ids"]
    assert ids.shape[1] == 14  # every word of the IOI vocabulary is one token
    assert model(ids).logits.shape == (1, 14, model.config.vocab_size)
    assert sum(f.stat().st_size for f in folder.iterdir()) < 2_000_000


@pytest.mark.parametrize("backend", ["transformer_lens", None])
def test_tiny_gpt2_loads_through_load_model(backend: str | None) -> None:
    from transformers import GPT2LMHeadModel

    handle = mi_assert.load_model("tiny-gpt2", backend=backend, device="cpu")
    assert handle.spec == "tiny-gpt2@s0"
    assert (handle.n_layers, handle.n_heads, handle.d_model) == (2, 4, 64)
    tokens = handle.to_tokens(["When Mary and John went to the store, John gave a drink to"])
    reference = GPT2LMHeadModel.from_pretrained(str(get("tiny-gpt2").checkpoint_dir(0)),
                                                attn_implementation="eager").eval()
    with torch.no_grad():
        expected = reference(tokens.cpu()).logits
    got = handle.forward(tokens).cpu()
    # TL centres the unembedding when folding; compare log-probs, which are invariant to that
    torch.testing.assert_close(got.log_softmax(-1), expected.log_softmax(-1), atol=1e-3, rtol=1e-3)
