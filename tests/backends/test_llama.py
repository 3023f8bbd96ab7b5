"""Llama-family specifics (grouped K/V heads, no learned positions) on three backends; the
parity every decoder layout shares is in test_decoder_layouts.py."""

from __future__ import annotations

import pytest
import torch

from mi_assert import Intervention, MiAssertInputError
from tests.backends.conftest import BACKENDS
from tests.backends.test_parity import (
    _tokens,
    assert_interventions_match,
)

OTHERS = [b for b in BACKENDS if b != "transformer_lens"]


def test_shape_facts_agree(llama_handles: dict) -> None:
    facts = {b: (h.n_layers, h.n_heads, h.d_model, h.d_head, h.d_vocab, h.n_ctx, h.has_mlp,
                 h.has_pos_embed, h.bos_token_id) for b, h in llama_handles.items()}
    assert set(facts.values()) == {(2, 4, 64, 16, 100, 64, True, False, 0)}, facts


@pytest.mark.parametrize("backend", BACKENDS)
def test_grouped_key_value_heads_as_transformer_lens(llama_handles: dict, backend: str) -> None:
    handle = llama_handles[backend]
    names = handle.hook_names()
    assert "hook_pos_embed" not in names and len(names) == 2 + 2 * 11
    _, cache = handle.run_with_cache(_tokens(), ["blocks.0.attn.hook_q", "blocks.0.attn.hook_k"])
    # 4 query heads share 2 key/value heads; hook_k keeps the 2, as TL's grouped-query attention
    assert cache["blocks.0.attn.hook_q"].shape[2] == 4 and cache["blocks.0.attn.hook_k"].shape[2] == 2


@pytest.mark.parametrize("backend", OTHERS)
def test_interventions_give_identical_logits(llama_handles: dict, backend: str) -> None:
    ref = llama_handles["transformer_lens"]
    _, cc = ref.run_with_cache(_tokens(7), ["blocks.0.attn.hook_z", "blocks.1.attn.hook_k"])
    direction = torch.randn(ref.d_model, generator=torch.Generator().manual_seed(3))
    cases = [
        [Intervention("blocks.0.attn.hook_z", 0.0, heads=[1], positions=[2, 3])],
        [Intervention("blocks.1.attn.hook_k", cc["blocks.1.attn.hook_k"][:, :, [1]], heads=[1])],
        [Intervention("blocks.0.attn.hook_q", 0.5, mode="add", heads=[3]),
         Intervention("blocks.0.attn.hook_v", lambda v: v.flip(-1))],
        [Intervention("blocks.1.attn.hook_pattern", lambda p: p.roll(1, dims=-1), heads=[2])],
        [Intervention("blocks.0.hook_resid_mid", direction * 2, mode="add")],
        [Intervention("blocks.1.hook_resid_pre", direction, mode="add", positions=[4])],
        [Intervention("blocks.0.hook_mlp_out", 0.0), Intervention("blocks.1.hook_attn_out", 0.0, positions=[11])],
        [Intervention("hook_embed", direction, mode="add", positions=[1])],
        [Intervention("ln_final.hook_normalized", lambda x: x.flip(-1))],
    ]
    assert_interventions_match(ref, llama_handles[backend], cases)


@pytest.mark.parametrize("backend", BACKENDS)
def test_hook_pos_embed_is_refused_by_name(llama_handles: dict, backend: str) -> None:
    with pytest.raises(MiAssertInputError, match="no learned positional embedding"):
        llama_handles[backend].run_with_cache(_tokens(), ["hook_pos_embed"])


def test_llama_with_biases_is_refused_on_transformer_lens(tmp_path) -> None:
    from transformers import LlamaConfig, LlamaForCausalLM

    from mi_assert import load_model
    from mi_assert.errors import UnsupportedModelError

    config = LlamaConfig(vocab_size=50, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                         num_attention_heads=4, max_position_embeddings=16, attention_bias=True)
    LlamaForCausalLM(config).save_pretrained(tmp_path)
    with pytest.raises(UnsupportedModelError, match="attention_bias"):
        load_model(str(tmp_path), backend="transformer_lens", device="cpu")
