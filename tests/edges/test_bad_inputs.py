"""Bad input to edge sweeps: a clear MiAssertInputError saying what is allowed."""

from __future__ import annotations

import pytest
import torch

from mi_assert.edges import edge_sweep
from mi_assert.errors import MiAssertInputError


@pytest.fixture(scope="module")
def planted_inputs(planted_edges):
    handle, _, ps = planted_edges
    return handle, ps


def test_unknown_edge_name(planted_inputs):
    handle, ps = planted_inputs
    with pytest.raises(MiAssertInputError, match="SENDER->RECEIVER"):
        edge_sweep(handle, ps, edges=["L0H0 to L1H0"])
    with pytest.raises(MiAssertInputError, match="heads are 0..3"):
        edge_sweep(handle, ps, edges=["L0H9->logits"])
    scores = edge_sweep(handle, ps, edges=["L1H0->logits"])
    with pytest.raises(MiAssertInputError, match="attention-only"):
        scores.score("mlp0->logits")
    with pytest.raises(MiAssertInputError, match="was not scored"):
        scores.score("L0H0->L1H0.k")


def test_sender_downstream_of_receiver(planted_inputs):
    handle, ps = planted_inputs
    with pytest.raises(MiAssertInputError, match="L1H0 is not upstream of receiver L0H0.k"):
        edge_sweep(handle, ps, edges=["L1H0->L0H0.k"])


def test_edge_listed_twice(planted_inputs):
    handle, ps = planted_inputs
    with pytest.raises(MiAssertInputError, match="listed twice"):
        edge_sweep(handle, ps, edges=["L1H0->logits", "L1H0->logits"])


@pytest.mark.parametrize("backend", ["nnsight", "bridge"])
def test_unsupported_backend(backend):
    import mi_assert

    handle = mi_assert.load_model("tiny-gpt2", backend=backend, device="cpu")
    tokens = torch.tensor([[1, 2, 3, 4]])
    with pytest.raises(MiAssertInputError, match=r"Supported: transformer_lens, nnsight \(wrapping "
                                                 r"a HookedTransformer\)"):
        edge_sweep(handle, tokens, tokens, lambda logits: logits[:, -1, 0])


def test_mismatched_clean_and_corrupted(planted_inputs):
    handle, ps = planted_inputs
    with pytest.raises(MiAssertInputError, match="same length"):
        edge_sweep(handle, ps.clean, ps.corrupted[:, :-1], "logit_diff")
    with pytest.raises(MiAssertInputError, match="batch sizes must match"):
        edge_sweep(handle, ps.clean, ps.corrupted[:-1], lambda logits: logits[:, -1, 0])


def test_bad_method_metric_and_max_batch(planted_inputs):
    handle, ps = planted_inputs
    with pytest.raises(MiAssertInputError, match="allowed 'exact', 'eap'"):
        edge_sweep(handle, ps, method="acdc")
    with pytest.raises(MiAssertInputError, match="needs answer ids"):
        edge_sweep(handle, ps.clean, ps.corrupted, "logit_diff")
    with pytest.raises(MiAssertInputError, match="max_batch"):
        edge_sweep(handle, ps, max_batch=0)
    with pytest.raises(MiAssertInputError, match="expected"):
        edge_sweep(handle, ps, metric=lambda logits: logits[:, -1].sum())


def test_grouped_query_attention_is_refused():
    from transformer_lens import HookedTransformer, HookedTransformerConfig

    cfg = HookedTransformerConfig(n_layers=1, d_model=16, d_head=4, n_heads=4, n_key_value_heads=2,
                                  d_vocab=20, n_ctx=8, attn_only=True, act_fn="relu")
    model = HookedTransformer(cfg)
    tokens = torch.tensor([[1, 2, 3]])
    with pytest.raises(MiAssertInputError, match="grouped-query attention"):
        edge_sweep(model, tokens, tokens, lambda logits: logits[:, -1, 0])
