"""GPT-NeoX specifics (fused per-head q/k/v, parallel attention/MLP without resid_mid) on
three backends; the parity every decoder layout shares is in test_decoder_layouts.py."""

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


def test_shape_facts_agree(neox_handles: dict) -> None:
    facts = {b: (h.n_layers, h.n_heads, h.d_model, h.d_head, h.d_vocab, h.n_ctx, h.has_pos_embed,
                 h.parallel_attn_mlp) for b, h in neox_handles.items()}
    assert len(set(facts.values())) == 1, facts
    assert facts["nnsight"][:7] == (2, 4, 64, 16, 100, 64, False)


@pytest.mark.parametrize("backend", OTHERS)
def test_interventions_give_identical_logits(neox_handles: dict, backend: str) -> None:
    ref = neox_handles["transformer_lens"]
    _, cc = ref.run_with_cache(_tokens(7), ["blocks.1.attn.hook_k", "blocks.0.attn.hook_z"])
    direction = torch.randn(ref.d_model, generator=torch.Generator().manual_seed(3))
    cases = [
        [Intervention("blocks.0.attn.hook_z", 0.0, heads=[1], positions=[2, 3])],
        [Intervention("blocks.0.attn.hook_z", cc["blocks.0.attn.hook_z"][:, :, [2]], heads=[2])],
        # q, k and v share one fused projection: edits of two of them must compose
        [Intervention("blocks.1.attn.hook_q", 0.5, mode="add", heads=[3]),
         Intervention("blocks.1.attn.hook_k", cc["blocks.1.attn.hook_k"][:, :, [0]], heads=[0])],
        [Intervention("blocks.0.attn.hook_v", lambda v: v.flip(-1))],
        [Intervention("blocks.1.attn.hook_pattern", lambda p: p.roll(1, dims=-1), heads=[2])],
        [Intervention("blocks.1.hook_resid_pre", direction, mode="add", positions=[4])],
        [Intervention("blocks.0.hook_mlp_out", 0.0), Intervention("blocks.1.hook_attn_out", 0.0, positions=[11])],
        [Intervention("blocks.1.hook_resid_post", lambda x: x.roll(1, dims=-1))],
        [Intervention("hook_embed", direction, mode="add", positions=[1])],
        [Intervention("ln_final.hook_normalized", lambda x: x.flip(-1))],
    ]
    if not ref.parallel_attn_mlp:
        cases.append([Intervention("blocks.0.hook_resid_mid", direction * 2, mode="add")])
    assert_interventions_match(ref, neox_handles[backend], cases)


@pytest.mark.parametrize("backend", BACKENDS)
def test_resid_mid_exists_only_in_the_sequential_variant(neox_handles: dict, backend: str) -> None:
    handle = neox_handles[backend]
    assert ("blocks.0.hook_resid_mid" in handle.hook_names()) != handle.parallel_attn_mlp
    if handle.parallel_attn_mlp:
        with pytest.raises(MiAssertInputError, match="in parallel"):
            handle.run_with_cache(_tokens(), ["blocks.0.hook_resid_mid"])
    else:
        _, cache = handle.run_with_cache(_tokens(), ["blocks.0.hook_resid_mid"])
        assert cache["blocks.0.hook_resid_mid"].shape == (3, 12, handle.d_model)


