"""A head claim pays for the layers it reads, and a raw model reuses its measurements.

* ``capture_activations`` ends the forward pass after the last hook read and computes no
  logits; what it returns equals a full ``run_with_cache``, on every backend that heads run on;
* a claim on layer L measures layers 0..L only, with scores equal to a full measurement's;
* measurements are cached per model object (weakly), keyed by the weights' versions.
"""

from __future__ import annotations

import gc
import weakref

import numpy as np
import pytest
import torch

import mi_assert
from mi_assert.errors import MiAssertInputError
from mi_assert.heads import measure
from mi_assert.heads.measure import clear_cache, measure_role, measure_roles

ROLES = ("induction", "previous_token", "duplicate_token", "bos")
N_LAYERS = 3


def tiny_model(seed: int = 0):
    """A random 3-layer HookedTransformer, big enough for the default repeat lengths."""
    from transformer_lens import HookedTransformer, HookedTransformerConfig

    cfg = HookedTransformerConfig(n_layers=N_LAYERS, d_model=32, n_heads=2, d_head=16, d_mlp=64,
                                  n_ctx=80, d_vocab=120, act_fn="gelu_new",
                                  normalization_type="LN", seed=seed)
    return HookedTransformer(cfg).eval()


def as_claim_handle(model):
    """A handle declaring token 0 as BOS (the random model has no tokenizer)."""
    return mi_assert.as_handle(model, bos_token_id=0)


class BlockCalls:
    """Counts how often each block and the unembedding of a HookedTransformer are entered."""

    def __init__(self, model) -> None:
        self.blocks = [0] * len(model.blocks)
        self.unembed = 0
        self._handles = [block.register_forward_pre_hook(self._block(i)) for i, block in enumerate(model.blocks)]
        self._handles.append(model.unembed.register_forward_pre_hook(self._unembed))

    def _block(self, i: int):
        def hook(*_):
            self.blocks[i] += 1
        return hook

    def _unembed(self, *_):
        self.unembed += 1

    def remove(self) -> None:
        for h in self._handles:
            h.remove()


@pytest.fixture
def model():
    clear_cache()
    yield tiny_model()
    clear_cache()


@pytest.fixture
def tokens():
    return torch.randint(1, 120, (3, 21), generator=torch.Generator().manual_seed(1))


def test_capture_stops_after_the_last_hook_and_equals_a_full_run(model, tokens, one_torch_thread):
    handle = mi_assert.as_handle(model)
    hooks = ["blocks.1.attn.hook_pattern", "blocks.0.attn.hook_pattern", "blocks.1.hook_resid_mid"]
    _, full = handle.run_with_cache(tokens, hooks)
    calls = BlockCalls(model)
    part = handle.capture_activations(tokens, hooks)
    calls.remove()
    assert set(part) == set(hooks)
    for name in hooks:
        assert torch.equal(part[name], full[name]), name
    # block 1 ran up to resid_mid (its MLP comes after); block 2 and the unembedding never ran
    assert calls.blocks == [1, 1, 0] and calls.unembed == 0
    assert not any(hp.fwd_hooks for hp in model.hook_dict.values())  # nothing left attached


def test_capture_on_nnsight_stops_too(model, tokens, one_torch_thread):
    from nnsight import NNsight

    handle = mi_assert.as_handle(NNsight(model))
    hooks = ["blocks.0.attn.hook_pattern", "blocks.1.attn.hook_pattern"]
    _, full = mi_assert.as_handle(model).run_with_cache(tokens, hooks)
    calls = BlockCalls(model)
    part = handle.capture_activations(tokens, hooks)
    calls.remove()
    for name in hooks:
        assert torch.equal(part[name], full[name]), name
    assert calls.blocks[2] == 0 and calls.unembed == 0


def test_capture_of_a_final_hook_runs_every_block_but_no_unembedding(model, tokens, one_torch_thread):
    handle = mi_assert.as_handle(model)
    _, full = handle.run_with_cache(tokens, ["ln_final.hook_normalized"])
    calls = BlockCalls(model)
    part = handle.capture_activations(tokens, ["ln_final.hook_normalized"])
    calls.remove()
    assert torch.equal(part["ln_final.hook_normalized"], full["ln_final.hook_normalized"])
    assert calls.blocks == [1, 1, 1] and calls.unembed == 0


def test_claim_measures_only_through_its_layer_and_equals_the_full_measurement(model, one_torch_thread):
    handle = as_claim_handle(model)
    full = measure_roles(handle, ROLES, seeds=(0,))
    clear_cache()
    calls = BlockCalls(model)
    shallow = measure_roles(handle, ROLES, seeds=(0,), through_layer=0)
    calls.remove()
    assert calls.blocks[1:] == [0, 0] and calls.unembed == 0 and calls.blocks[0] > 0
    for role in ROLES:
        assert shallow[role].measured_layers == 1 and full[role].measured_layers == N_LAYERS
        assert shallow[role].rows.keys() == full[role].rows.keys()
        for key, arr in shallow[role].rows.items():
            assert np.array_equal(arr, full[role].rows[key][:, :1]), (role, key)
        assert shallow[role].settings == full[role].settings
    # the claim's evidence (and a failed claim's hint) does not depend on the depth measured
    clear_cache()
    for head in range(2):
        for check in (mi_assert.check_induction_head, mi_assert.check_previous_token_head):
            role = "induction" if check is mi_assert.check_induction_head else "previous_token"
            ev = check(handle, 0, head, seeds=(0,))
            assert ev.to_dict() == full[role].evidence((0, head)).to_dict()
    with pytest.raises(MiAssertInputError, match="layers 0..0 only"):
        shallow["induction"].claim((1, 0))


def test_failed_claim_names_the_best_heads_of_every_layer(model, one_torch_thread):
    handle = as_claim_handle(model)
    full = measure_role(handle, "previous_token", seeds=(0,))
    best = full.best_heads_text()
    clear_cache()
    ev = mi_assert.check_previous_token_head(handle, 0, 0, seeds=(0,), threshold=0.99)
    assert not ev.passed and ev.hint == best
    assert any(f"L{N_LAYERS - 1}H" in part for part in best.split(", "))  # deeper layers too
    assert mi_assert.check_previous_token_head(handle, 0, 0, seeds=(0,), threshold=0.0).hint == ""


def test_a_raw_model_reuses_its_measurements_until_a_weight_changes(model, one_torch_thread):
    passing = {"seeds": (0,), "threshold": 0.0}  # passing claims: no hint survey
    calls = BlockCalls(model)
    mi_assert.check_induction_head(model, 1, 0, **passing)
    first = list(calls.blocks)
    assert first[0] > 0 and first[2] == 0
    # a new handle on the same model object: the same measurement, no forward pass
    mi_assert.check_previous_token_head(model, 0, 1, **passing)
    mi_assert.check_induction_head(model, 1, 1, **passing)
    assert calls.blocks == first
    # a deeper layer needs the forward passes to go further: measured again, then reused
    mi_assert.check_induction_head(model, 2, 0, **passing)
    deeper = list(calls.blocks)
    assert deeper[2] > 0
    mi_assert.check_induction_head(model, 0, 0, **passing)
    assert calls.blocks == deeper
    # an in-place edit of one weight invalidates it
    with torch.no_grad():
        model.blocks[0].attn.W_K[0] *= 0.5
    mi_assert.check_induction_head(model, 0, 0, **passing)
    edited = list(calls.blocks)
    assert edited[0] > deeper[0] and edited[1:] == deeper[1:]
    # failed claims rank every head on the survey prompts: one short pass, then reused
    assert not mi_assert.check_induction_head(model, 0, 0, seeds=(0,), threshold=0.99).passed
    surveyed = list(calls.blocks)
    assert surveyed[2] > edited[2]
    assert not mi_assert.check_duplicate_token_head(model, 0, 1, seeds=(0,), threshold=0.99).passed
    assert calls.blocks == surveyed
    calls.remove()


def test_cached_measurements_do_not_keep_the_model_alive(one_torch_thread):
    clear_cache()
    model = tiny_model()
    mi_assert.check_induction_head(model, 0, 0, seeds=(0,))
    assert len(measure._ATTENTION_CACHE) == 1
    ref = weakref.ref(model)
    del model
    gc.collect()
    assert ref() is None
    assert len(measure._ATTENTION_CACHE) == 0


def test_declared_bos_is_part_of_the_cache_key(model, one_torch_thread):
    calls = BlockCalls(model)
    mi_assert.check_induction_head(model, 0, 0, seeds=(0,))
    n = calls.blocks[0]
    mi_assert.check_induction_head(mi_assert.as_handle(model, bos_token_id=0), 0, 0, seeds=(0,))
    calls.remove()
    assert calls.blocks[0] > n  # other prompts (BOS prepended): measured, not reused


@pytest.mark.parametrize("role", ["previous_token", "bos"])
def test_one_cell_roles_read_their_cell_with_the_same_result(role):
    from mi_assert.heads.scores import detection_pattern, standard_scores

    gen = torch.Generator().manual_seed(0)
    tokens = torch.randint(1, 50, (5, 17), generator=gen)
    logits = torch.randn(5, 3, 17, 17, generator=gen).masked_fill(
        torch.ones(17, 17, dtype=torch.bool).triu(1), float("-inf"))
    pattern = logits.softmax(-1)
    det = detection_pattern(role, tokens)
    assert torch.equal(standard_scores(pattern, det, role), standard_scores(pattern, det))
