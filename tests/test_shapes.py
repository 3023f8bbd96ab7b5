"""Public tensor arguments and results carry jaxtyping shapes."""

from __future__ import annotations

import typing

from mi_assert.backends.base import ModelHandle
from mi_assert.prompts import repeated_tokens
from mi_assert.sae.metrics import sae_forward


def _dims(annotation) -> str:
    return annotation.dim_str


def test_handle_methods_name_their_axes():
    hints = typing.get_type_hints(ModelHandle.forward)
    assert _dims(hints["return"]) == "batch pos d_vocab"
    assert _dims(typing.get_type_hints(ModelHandle.to_tokens)["return"]) == "batch pos"
    logits, acts = typing.get_args(typing.get_type_hints(ModelHandle.run_with_cache)["return"])
    assert _dims(logits) == "batch pos d_vocab"


def test_prompt_and_sae_functions_name_their_axes():
    assert _dims(typing.get_type_hints(repeated_tokens)["return"]) == "batch pos"
    hints = typing.get_type_hints(sae_forward)
    assert _dims(hints["acts"]) == "*tokens d_in"
    latents, recon = typing.get_args(hints["return"])
    assert _dims(latents) == "*tokens d_sae"
