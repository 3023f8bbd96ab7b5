"""Head-role assertions on the planted model, whose ground truth is exact."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import mi_assert
from mi_assert import ClaimFailed
from mi_assert.errors import MiAssertInputError
from mi_assert.heads import assertions, measure_role
from mi_assert.heads.measure import clear_cache
from mi_assert.heads.names import head_name

ASSERT = {
    "induction": mi_assert.assert_induction_head,
    "previous_token": mi_assert.assert_previous_token_head,
    "duplicate_token": mi_assert.assert_duplicate_token_head,
    "bos": mi_assert.assert_attends_to_bos,
    "copying": mi_assert.assert_copying_head,
}
ALL_HEADS = [(layer, head) for layer in range(2) for head in range(4)]


@pytest.mark.parametrize("role", sorted(ASSERT))
def test_true_heads_pass_and_every_other_head_raises(role, planted):
    handle, truth = planted
    true_heads = truth.heads(role)
    assert true_heads
    for layer, head in ALL_HEADS:
        if (layer, head) in true_heads:
            ev = ASSERT[role](handle, layer, head)
            assert ev.passed and ev.bound > ev.threshold
            assert len(ev.per_seed) >= 3 and all(s.passed for s in ev.per_seed)
        else:
            with pytest.raises(AssertionError) as info:
                ASSERT[role](handle, layer, head)
            assert isinstance(info.value, ClaimFailed)
            message = str(info.value)
            assert f"{head_name(layer, head)} is " in message and "FAIL" in message
            # the failure names what the model does have: the true head ranks first
            best = message.split("best-scoring heads for", 1)[1]
            assert best.split(": ", 2)[-1].startswith(tuple(head_name(*h) for h in true_heads))


def test_positional_impostor_scores_high_at_one_repeat_length_only(planted):
    handle, truth = planted
    impostor = truth.heads("positional")[0]
    offset = truth.offset
    # at the one repeat length that matches its look-back distance it looks like induction ...
    ev = mi_assert.assert_induction_head(handle, *impostor, repeat_lens=(offset + 1,))
    assert ev.passed
    # ... which is why the default checks several lengths, and the claim fails
    with pytest.raises(AssertionError) as info:
        mi_assert.assert_induction_head(handle, *impostor)
    evidence = info.value.evidence
    passing = {s.label for s in evidence.per_seed if s.passed}
    assert passing == {f"repeat_len={offset + 1}"}
    assert evidence.details["seeds_passed"] == "0 of 3"


def test_family_of_heads_is_holm_corrected(planted):
    handle, truth = planted
    sinks = truth.heads("bos")
    ev = mi_assert.assert_attends_to_bos(handle, sinks)
    assert ev.passed and len(ev.family) == 2
    assert sorted(m.settings["holm_alpha"] for m in ev.family) == pytest.approx([0.025, 0.05])
    assert ev.figures["pattern"]["data"].shape[0] == 2
    # one wrong member fails the family, and the message lists every member
    wrong = [*sinks, truth.heads("previous_token")[0]]
    with pytest.raises(AssertionError) as info:
        mi_assert.assert_attends_to_bos(handle, [head_name(*h) for h in wrong])
    family = info.value.evidence.family
    assert [m.passed for m in family] == [True, True, False]
    assert str(info.value).count("member ") == 3


@pytest.mark.parametrize("form", ["pair", "name", "dotted", "tuple", "list"])
def test_head_forms_give_identical_evidence(form, planted):
    handle, truth = planted
    layer, head = truth.heads("induction")[0]
    args = {"pair": (layer, head), "name": (f"L{layer}H{head}",), "dotted": (f"{layer}.{head}",),
            "tuple": ((layer, head),), "list": ([(layer, head)],)}[form]
    reference = mi_assert.assert_induction_head(handle, layer, head, seeds=(0,))
    assert mi_assert.assert_induction_head(handle, *args, seeds=(0,)).to_dict() == reference.to_dict()


def test_deterministic_and_equal_to_measured_evidence(planted):
    handle, truth = planted
    head = truth.heads("previous_token")[0]
    clear_cache()
    a = mi_assert.assert_previous_token_head(handle, *head)
    clear_cache()  # recompute from scratch: the forward passes themselves are deterministic
    b = mi_assert.assert_previous_token_head(handle, *head)
    assert a.to_dict() == b.to_dict()
    assert np.array_equal(a.figures["pattern"]["data"], b.figures["pattern"]["data"])
    # calibration uses measure_role(...).evidence(head): it must be the assertion's evidence
    assert measure_role(handle, "previous_token").evidence(head).to_dict() == a.to_dict()


def test_evidence_contents_and_figures(planted):
    handle, truth = planted
    ev = mi_assert.assert_induction_head(handle, *truth.heads("induction")[0])
    assert ev.threshold == 0.4 and ev.alpha == 0.05 and ev.n == 3 * 4 * 32
    assert ev.settings["split"] == "heldout"
    assert "shortened" in ev.settings["repeat_lens_note"]  # 32 does not fit n_ctx=64 with BOS
    assert ev.settings["repeat_lens"] == [8, 16, 24, 31]
    assert ev.model["spec"] == "planted-induction@s0" and ev.model["checkpoint"]
    pattern = ev.figures["pattern"]
    assert pattern["kind"] == "pattern" and pattern["data"].shape == (len(pattern["tokens"]),) * 2
    hist = ev.figures["samples"]
    assert hist["kind"] == "hist" and len(hist["data"]) == len(ev.per_seed) == 12
    assert "Evidence(L" in repr(ev) and "PASS" in repr(ev)
    copying = mi_assert.assert_copying_head(handle, *truth.heads("copying")[0])
    assert "random OV circuit" in copying.details["random_baseline"]
    assert copying.details["eigenvalue_copying_score"] > 0.9


def test_threshold_and_quorum_options(planted):
    handle, truth = planted
    head = truth.heads("induction")[0]
    with pytest.raises(AssertionError):
        mi_assert.assert_induction_head(handle, *head, threshold=1.0)  # bound never exceeds 1
    other = truth.heads("self")[0]
    with pytest.raises(AssertionError):
        mi_assert.assert_induction_head(handle, *other, quorum=1)


def test_model_seeds_load_other_training_seeds(planted):
    from mi_assert.zoo import ground_truth

    by_seed = {s: ground_truth(f"planted-induction@s{s}").heads("induction")[0] for s in range(12)}
    seed_a = 0
    same = next(s for s in range(1, 12) if by_seed[s] == by_seed[seed_a])
    different = next(s for s in range(1, 12) if by_seed[s] != by_seed[seed_a])
    head = by_seed[seed_a]
    ev = mi_assert.assert_induction_head(f"planted-induction@s{seed_a}", *head,
                                         model_seeds=(seed_a, same), seeds=(0,))
    assert ev.passed and {s.model_seed for s in ev.per_seed} == {seed_a, same}
    handle, _ = planted
    with pytest.raises(AssertionError) as info:
        mi_assert.assert_induction_head(handle, *head, model_seeds=(seed_a, different), seeds=(0, 1))
    assert info.value.evidence.details["seeds_passed"] == "2 of 4"
    ev = mi_assert.assert_induction_head(handle, *head, model_seeds=(seed_a, different),
                                         seeds=(0, 1), quorum=2)
    assert ev.passed and ev.settings["quorum"] == "2 of 4 seeds"


def test_bad_input_raises_clear_errors(planted):
    handle, _ = planted
    with pytest.raises(MiAssertInputError, match=r"layer 2 is out of range.*2 layers"):
        mi_assert.assert_induction_head(handle, 2, 0)
    with pytest.raises(MiAssertInputError, match=r"head 7 is out of range.*4 heads"):
        mi_assert.assert_induction_head(handle, "L1H7")
    with pytest.raises(MiAssertInputError, match="unknown option.*Did you mean 'seeds'"):
        mi_assert.assert_induction_head(handle, 1, 0, seed=3)
    with pytest.raises(MiAssertInputError, match="n_ctx=64.*longest that fits is 31"):
        mi_assert.assert_induction_head(handle, 1, 0, repeat_lens=(8, 40))
    with pytest.raises(MiAssertInputError, match="model_seeds.*zoo model"):
        from mi_assert.backends.transformer_lens import TransformerLensHandle

        mi_assert.assert_induction_head(TransformerLensHandle(handle.model), 1, 0, model_seeds=(1,))
    with pytest.raises(MiAssertInputError, match="alpha"):
        mi_assert.assert_induction_head(handle, 1, 0, alpha=0.7)


def test_context_too_short_for_any_repeat_raises():
    from transformer_lens import HookedTransformer, HookedTransformerConfig

    cfg = HookedTransformerConfig(n_layers=1, d_model=8, d_head=4, n_heads=2, d_vocab=10, n_ctx=3,
                                  attn_only=True, act_fn=None, normalization_type=None)
    torch.manual_seed(0)
    model = HookedTransformer(cfg)
    with pytest.raises(MiAssertInputError, match="n_ctx=3 cannot hold even a repeat length of 2"):
        mi_assert.assert_previous_token_head(model, 0, 0)
    with pytest.raises(MiAssertInputError, match="no BOS token"):
        mi_assert.assert_attends_to_bos(model, 0, 0)


def test_user_prompts_option(planted):
    handle, truth = planted
    from mi_assert.prompts import repeated_tokens

    tokens = repeated_tokens(8, 10, 64, seed=5, bos_token_id=0)
    ev = mi_assert.assert_induction_head(handle, *truth.heads("induction")[0], prompts=tokens)
    assert ev.passed and ev.n == 8 and "given by the caller" in ev.settings["prompts"]


def test_every_helper_hides_its_frame():
    helpers = [assertions.check_role, assertions._assert_role, *ASSERT.values()]
    for fn in helpers:
        assert "__tracebackhide__" in fn.__code__.co_varnames, fn.__name__


def count_forwards(handle) -> list[int]:
    """A list that grows by one on every forward pass ``handle`` runs from now on."""
    calls: list[int] = []
    original = handle._run

    def counting_run(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    handle._run = counting_run
    return calls


def test_measurements_are_reused_until_weights_change():
    handle = mi_assert.load_model("planted-induction@s7", device="cpu")
    truth = handle.meta["ground_truth"]
    head = truth.heads("induction")[0]
    calls = count_forwards(handle)
    mi_assert.assert_induction_head(handle, *head, seeds=(0,))
    first = len(calls)
    assert first == 4  # one forward pass per repeat length serves every head
    mi_assert.assert_previous_token_head(handle, *truth.heads("previous_token")[0], seeds=(0,))
    assert len(calls) == first  # all attention roles came from those passes
    with torch.no_grad():  # an in-place edit invalidates the cached measurement
        handle.model.blocks[1].attn.W_V[head[1]] *= 0.0
        handle.model.blocks[1].attn.W_K[head[1]] *= 0.0
    with pytest.raises(AssertionError):
        mi_assert.assert_induction_head(handle, *head, seeds=(0,))
    assert len(calls) == 2 * first


def test_sampling_seeds_share_forward_passes():
    handle = mi_assert.load_model("planted-induction@s7", device="cpu")
    calls = count_forwards(handle)
    clear_cache()
    both = measure_role(handle, "induction", seeds=(0, 1))  # 2 x 32 prompts: one batch of 64
    assert len(calls) == 4  # one forward pass per repeat length serves both seeds
    clear_cache()
    alone = measure_role(handle, "induction", seeds=(1,))
    assert [k for k in both.rows if k.seed == 1] == list(alone.rows)
    for key, arr in alone.rows.items():
        np.testing.assert_allclose(both.rows[key], arr, atol=1e-6)
    assert list(both.rows) == sorted(both.rows, key=lambda k: k.seed)  # seed-major order
