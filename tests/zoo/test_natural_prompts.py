"""Natural-text prompts for ``kjv-gpt2-4l``: equal token lengths, clean repeats, disjoint splits."""

from __future__ import annotations

import pytest

from mi_assert.errors import MiAssertInputError
from mi_assert.zoo.natural import prompts as P

pytestmark = pytest.mark.skipif(not P.HELDOUT_PATH.exists() or not list(P.FOLDER.glob("step*")),
                                reason="kjv-gpt2-4l is not trained yet")


@pytest.fixture(scope="module")
def tok():
    return P.tokenizer()


def test_splits_are_disjoint_halves() -> None:
    fit, confirm = P.heldout_chapters(P.FIT), P.heldout_chapters(P.CONFIRM)
    assert fit and confirm and not {c.title for c in fit} & {c.title for c in confirm}
    assert len(fit) + len(confirm) == len(P.heldout_chapters())
    with pytest.raises(MiAssertInputError, match="allowed"):
        P.heldout_chapters("train-ish")


def test_repeated_passages_tokenize_to_two_exact_copies(tok) -> None:
    texts = P.repeated_passages(8, 24, P.CONFIRM, seed=0, tok=tok)
    assert len(set(texts)) == 8
    for text in texts:
        ids = tok(text)["input_ids"]
        assert len(ids) == 48 and ids[:24] == ids[24:]
    assert P.repeated_passages(8, 24, P.CONFIRM, seed=0, tok=tok) == texts


def test_induction_pairs_share_the_suffix_and_length(tok) -> None:
    clean, corrupted, answers = P.induction_pairs(8, 30, P.FIT, seed=1, tok=tok)
    lengths = {len(tok(t)["input_ids"]) for t in clean + corrupted}
    assert len(lengths) == 1
    for c, r, a in zip(clean, corrupted, answers, strict=True):
        ci, ri = tok(c)["input_ids"], tok(r)["input_ids"]
        k = len(ci) - 30
        assert ci[30:] == ri[30:] == ci[:k] and ci[k] == a and ri[:30] != ci[:30]


def test_text_windows_are_bos_plus_running_text(tok) -> None:
    windows = P.text_windows(4, 16, P.FIT, seed=0, tok=tok)
    assert tuple(windows.shape) == (4, 17) and (windows[:, 0] == tok.bos_token_id).all()


def test_checkpoint_loads_on_every_backend_with_the_same_logits() -> None:
    import torch

    import mi_assert

    text = [" And the LORD spake unto Moses, saying"]
    logits = {}
    for backend in ("transformer_lens", "bridge", "nnsight"):
        handle = mi_assert.load_model("kjv-gpt2-4l:step1000", backend=backend, device="cpu")
        tokens = handle.to_tokens(text)
        assert tokens.shape == (1, 9) and int(tokens[0, 0]) == handle.bos_token_id
        logits[backend] = handle.forward(tokens).float()
    for backend in ("bridge", "nnsight"):
        torch.testing.assert_close(logits[backend], logits["transformer_lens"], atol=1e-4, rtol=1e-4)
