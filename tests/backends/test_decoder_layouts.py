"""Every mapped Hugging Face decoder layout beside GPT-2 (Llama, Mistral, Qwen2, GPT-NeoX
parallel and sequential), three backends: same logits, activations, gradients, weights and
patching sweeps. Layout-specific checks (head counts, interventions, missing hooks) live in
test_llama.py and test_neox.py."""

from __future__ import annotations

import pytest

from tests.backends.conftest import ATOL, BACKENDS
from tests.backends.test_parity import (
    GRADIENT_HOOKS,
    _tokens,
    assert_every_hook_matches,
    assert_gradients_match,
    assert_nnsight_matches_raw_model,
    assert_patching_sweeps_equal,
    assert_weights_match,
)

OTHERS = [b for b in BACKENDS if b != "transformer_lens"]


@pytest.mark.parametrize("backend", OTHERS)
def test_logits_and_every_canonical_hook_match_transformer_lens(decoder_handles: dict, backend: str) -> None:
    assert_every_hook_matches(decoder_handles["transformer_lens"], decoder_handles[backend])


def test_nnsight_matches_raw_hugging_face_model(decoder_handles: dict) -> None:
    assert_nnsight_matches_raw_model(decoder_handles["nnsight"])


@pytest.mark.parametrize("backend", BACKENDS)
def test_residual_identities(decoder_handles: dict, backend: str) -> None:
    decoder_handles[backend].check_residual_identities(_tokens(2), atol=ATOL)


@pytest.mark.parametrize("backend", OTHERS)
def test_gradients_agree(decoder_handles: dict, backend: str) -> None:
    ref = decoder_handles["transformer_lens"]
    hooks = [h for h in GRADIENT_HOOKS if h in ref.hook_names()]
    assert_gradients_match(ref, decoder_handles[backend], hooks)


@pytest.mark.parametrize("backend", BACKENDS)
def test_weights_in_transformer_lens_layout(decoder_handles: dict, backend: str) -> None:
    assert_weights_match(decoder_handles["transformer_lens"], decoder_handles[backend])
    assert decoder_handles[backend].weights().W_pos is None  # rotary: no learned positions


def test_patching_sweep_is_the_same_on_every_backend(decoder_handles: dict) -> None:
    assert_patching_sweeps_equal(decoder_handles)
