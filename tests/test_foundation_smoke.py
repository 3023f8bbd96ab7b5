"""Smoke tests of the foundation on the planted model (TransformerLens backend)."""

from __future__ import annotations

import pytest
import torch

from mi_assert import load_model
from mi_assert.backends import Intervention
from mi_assert.errors import MiAssertInputError, UnknownHookError
from mi_assert.prompts import repeated_tokens


def test_planted_model_residual_identities(planted):
    handle, _ = planted
    tokens = repeated_tokens(4, 10, handle.d_vocab, 0, handle.bos_token_id)
    handle.check_residual_identities(tokens)


def test_zero_ablating_induction_head_kills_induction(planted):
    handle, circuit = planted
    layer, head = circuit.heads("induction")[0]
    tokens = repeated_tokens(8, 12, handle.d_vocab, 1, handle.bos_token_id)
    logits = handle.forward(tokens)
    ablated, _ = handle.run_with_interventions(
        tokens, [Intervention(f"blocks.{layer}.attn.hook_z", 0.0, heads=[head])]
    )
    target = tokens[:, 14:]
    acc = (logits[:, 13:-1].argmax(-1) == target).float().mean()
    acc_ablated = (ablated[:, 13:-1].argmax(-1) == target).float().mean()
    # collisions inside the first half cap accuracy below 1 (vocab 63, 12 tokens)
    assert acc > 0.7 and acc_ablated < 0.1


def test_bad_hook_and_layer_messages(planted):
    handle, _ = planted
    with pytest.raises(UnknownHookError, match="Did you mean 'blocks.1.attn.hook_pattern'"):
        handle.parse_hook("blocks.1.attn.hook_patern")
    with pytest.raises(MiAssertInputError, match="out of range"):
        handle.parse_hook("blocks.7.hook_resid_pre")
    with pytest.raises(MiAssertInputError, match="exceeds the model's context"):
        handle.forward(torch.zeros(1, handle.n_ctx + 1, dtype=torch.long))


def test_unknown_zoo_name_and_backend():
    with pytest.raises(MiAssertInputError, match="Did you mean 'planted-induction'"):
        load_model("planted-induktion")
    with pytest.raises(MiAssertInputError, match="allowed: transformer_lens, bridge, nnsight"):
        load_model("planted-induction", backend="jax")
    with pytest.raises(MiAssertInputError, match="does not exist"):
        load_model("./no/such/checkpoint")
