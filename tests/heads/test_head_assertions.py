"""Head-role assertions on the planted model, whose ground truth is exact."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import mi_assert
from mi_assert.errors import MiAssertInputError
from mi_assert.heads import (
    assertions,
    check_attends_to_bos,
    check_copying_head,
    check_duplicate_token_head,
    check_induction_head,
    check_previous_token_head,
    measure_role,
)
from mi_assert.heads.measure import clear_cache
from mi_assert.heads.names import head_name
from mi_assert.verdict import ClaimFailed
from tests.evidence_contract import check_evidence as check_invariants

ASSERT = {
    "induction": mi_assert.assert_induction_head,
    "previous_token": mi_assert.assert_previous_token_head,
    "duplicate_token": mi_assert.assert_duplicate_token_head,
    "bos": mi_assert.assert_attends_to_bos,
    "copying": mi_assert.assert_copying_head,
}
CHECK = {
    "induction": check_induction_head,
    "previous_token": check_previous_token_head,
    "duplicate_token": check_duplicate_token_head,
    "bos": check_attends_to_bos,
    "copying": check_copying_head,
}
ALL_HEADS = [(layer, head) for layer in range(2) for head in range(4)]


@pytest.mark.parametrize("role", sorted(ASSERT))
def test_true_heads_pass_and_every_other_head_raises(role, planted):
    handle, truth = planted
    true_heads = truth.heads(role)
    assert true_heads
    for layer, head in ALL_HEADS:
        checked = check_invariants(CHECK[role](handle, layer, head))
        assert checked.passed == ((layer, head) in true_heads)
        if (layer, head) in true_heads:
            ev = check_invariants(ASSERT[role](handle, layer, head))
            assert ev.passed and ev.bound > ev.threshold
            if role == "copying":  # a 64-token vocabulary: every seed draws all 63 tokens,
                # the same sample, so the seeds pool one row's bootstrap
                assert len(ev.per_seed) == 1 and "seeds 1, 2" in ev.details["seeds_sharing_data"]
            else:
                assert len(ev.per_seed) >= 3 and all(s.passed for s in ev.per_seed)
            assert ev.to_dict() == checked.to_dict()
        else:
            with pytest.raises(AssertionError) as info:
                ASSERT[role](handle, layer, head)
            assert isinstance(info.value, ClaimFailed)
            failed = check_invariants(info.value.evidence)
            assert not failed.passed and failed.bound <= failed.threshold
            assert failed.to_dict() == checked.to_dict()
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
    ev = check_invariants(mi_assert.assert_induction_head(handle, *impostor,
                                                          repeat_lens=(offset + 1,)))
    assert ev.passed
    # ... which is why the default checks several lengths, and the claim fails
    with pytest.raises(AssertionError) as info:
        mi_assert.assert_induction_head(handle, *impostor)
    evidence = check_invariants(info.value.evidence)
    passing = {s.label for s in evidence.per_seed if s.passed}
    assert passing == {f"repeat_len={offset + 1}"}
    assert evidence.details["seeds_passed"] == "0 of 3"
    # the headline is the deciding row: the worst row of the deciding seed, in its own numbers
    worst = min(evidence.per_seed, key=lambda r: r.bound)
    assert (evidence.estimate, evidence.low, evidence.high, evidence.bound, evidence.n) == (
        worst.estimate, worst.low, worst.high, worst.bound, worst.n)
    assert evidence.deciding == worst.name and evidence.n == 32
    assert evidence.envelope == (min(r.low for r in evidence.per_seed),
                                 max(r.high for r in evidence.per_seed))


def test_family_of_heads_is_holm_corrected(planted):
    handle, truth = planted
    sinks = truth.heads("bos")
    ev = check_invariants(mi_assert.assert_attends_to_bos(handle, sinks))
    assert ev.passed and len(ev.family) == 2
    assert sorted(m.settings["holm_alpha"] for m in ev.family) == pytest.approx([0.025, 0.05])
    assert ev.figures["pattern"]["data"].shape[0] == 2
    assert len(ev.figures["samples"]["data"]) == sum(len(m.per_seed) for m in ev.family)
    # one wrong member fails the family, and the message lists every member
    wrong = [*sinks, truth.heads("previous_token")[0]]
    with pytest.raises(AssertionError) as info:
        mi_assert.assert_attends_to_bos(handle, [head_name(*h) for h in wrong])
    bad = check_invariants(info.value.evidence)
    assert [m.passed for m in bad.family] == [True, True, False]
    assert str(info.value).count("\n  member ") == 3
    assert bad.deciding == bad.family[2].claim and bad.bound <= bad.threshold


def test_family_headline_is_its_deciding_member(planted):
    handle, truth = planted
    passing = check_induction_head(handle, [truth.heads("induction")[0], truth.heads("positional")[0]],
                                   repeat_lens=(truth.offset + 1,))
    failing = check_induction_head(handle, [truth.heads("induction")[0], truth.heads("positional")[0]])
    sinks = check_attends_to_bos(handle, truth.heads("bos"))
    for ev, verdict in ((passing, True), (failing, False), (sinks, True)):
        check_invariants(ev)
        assert ev.passed is verdict
        assert ev.composite.startswith("Holm") and len(ev.family) == 2
        decider = next(m for m in ev.family if m.claim == ev.deciding)
        assert ev.details["deciding_member"] == decider.claim
        for name in ("metric", "estimate", "low", "high", "bound", "threshold", "n", "unit",
                     "alternative"):
            assert getattr(ev, name) == getattr(decider, name), name
        assert ev.passed == all(m.passed for m in ev.family) == decider.passed
        # each member is its own discovery, read at its Holm level
        assert sorted(m.settings["holm_rank"] for m in ev.family) == [1, 2]
    # the failing family is decided by the impostor, in its own (failing) row's numbers
    assert failing.deciding == f"{head_name(*truth.heads('positional')[0])} is an induction head"
    assert failing.bound <= failing.threshold and failing.n == 32


@pytest.mark.parametrize("form", ["pair", "name", "dotted", "tuple", "list"])
def test_head_forms_give_identical_evidence(form, planted):
    handle, truth = planted
    layer, head = truth.heads("induction")[0]
    args = {"pair": (layer, head), "name": (f"L{layer}H{head}",), "dotted": (f"{layer}.{head}",),
            "tuple": ((layer, head),), "list": ([(layer, head)],)}[form]
    reference = mi_assert.assert_induction_head(handle, layer, head, seeds=(0,))
    assert mi_assert.assert_induction_head(handle, *args, seeds=(0,)).to_dict() == reference.to_dict()
    assert check_induction_head(handle, *args, seeds=(0,)).to_dict() == reference.to_dict()


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
    ev = check_invariants(mi_assert.assert_induction_head(handle, *truth.heads("induction")[0]))
    # n is the prompts the deciding row resampled; every row rests on its own 32 prompts
    assert ev.threshold == 0.4 and ev.alpha == 0.05 and ev.n == 32 and ev.unit == "prompts"
    assert [r.n for r in ev.per_seed] == [32] * 12
    assert ev.deciding in {r.name for r in ev.per_seed} and ev.envelope is not None
    assert ev.settings["split"] == "heldout" and ev.settings["min_prompts"] == 8
    assert "shortened" in ev.settings["repeat_lens_note"]  # 32 does not fit n_ctx=64 with BOS
    assert ev.settings["repeat_lens"] == [8, 16, 24, 31]
    assert ev.model["spec"] == "planted-induction@s0" and ev.model["checkpoint"]
    pattern = ev.figures["pattern"]
    assert pattern["kind"] == "pattern" and pattern["data"].shape == (len(pattern["tokens"]),) * 2
    hist = ev.figures["samples"]
    assert hist["kind"] == "hist" and len(hist["data"]) == len(ev.per_seed) == 12
    assert "Evidence(L" in repr(ev) and "PASS" in repr(ev)
    copying = check_invariants(mi_assert.assert_copying_head(handle, *truth.heads("copying")[0]))
    assert "random OV circuit" in copying.details["random_baseline"]
    assert copying.details["eigenvalue_copying_score"] > 0.9
    assert copying.unit == "tokens" and copying.n == 63  # the planted vocabulary minus BOS
    # evidence is frozen: description is added by copying, never by mutation
    with pytest.raises(AttributeError):
        ev.claim = "something else"
    with pytest.raises(TypeError):
        ev.settings["threshold"] = 0.0
    renamed = ev.with_context(claim="renamed", details={"note": "x"})
    assert renamed.claim == "renamed" and renamed.bound == ev.bound and "note" not in ev.details


def test_threshold_and_quorum_options(planted):
    handle, truth = planted
    head = truth.heads("induction")[0]
    # a threshold inside the range moves the verdict: the true head clears 0.9, not a bound
    # the scores cannot reach
    assert check_invariants(mi_assert.assert_induction_head(handle, *head, threshold=0.9)).passed
    impostor = truth.heads("positional")[0]
    with pytest.raises(AssertionError):
        mi_assert.assert_induction_head(handle, *impostor, threshold=0.3)
    other = truth.heads("self")[0]
    with pytest.raises(AssertionError):
        mi_assert.assert_induction_head(handle, *other, quorum=1)


@pytest.mark.parametrize("threshold", [-1, -0.01, 1.0, 1.5])
def test_thresholds_outside_the_score_range_are_refused(threshold, planted):
    handle, truth = planted
    impostor = truth.heads("positional")[0]
    # below 0 every head would clear it (the impostor would "pass"); at 1 or above none could
    for fn in (mi_assert.assert_induction_head, check_induction_head):
        with pytest.raises(MiAssertInputError, match=r"outside the range of the induction score.*"
                                                      r"threshold in \[0, 1\)"):
            fn(handle, *impostor, threshold=threshold)
    with pytest.raises(MiAssertInputError, match="OV diagonal percentile"):
        mi_assert.assert_copying_head(handle, *truth.heads("copying")[0], threshold=threshold)
    # the lowest allowed threshold is accepted and decided
    assert check_invariants(check_induction_head(handle, *impostor, threshold=0.0)).passed


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


@pytest.mark.parametrize(("options", "message"), [
    ({"seeds": (0, 0)}, "seeds must be distinct"),
    ({"seeds": []}, "seeds must be an int or a non-empty sequence"),
    ({"seeds": "0"}, "seeds must be an int"),
    ({"model_seeds": [1.5]}, "model_seeds must be an int"),
    ({"quorum": 4}, r"quorum=4: an int count must lie in 1\.\.3"),
    ({"quorum": 1.5}, "quorum"),
    ({"alpha": 0.5}, r"alpha must be a number in \(0, 0\.5\)"),
    ({"n_resamples": 10}, "n_resamples must be an int >= 100"),
    ({"min_prompts": 1}, "min_prompts must be an int >= 2"),
    ({"n_prompts": 1}, "n_prompts must be an int >= 2"),
    ({"batch_size": 0}, "batch_size must be an int >= 1"),
    ({"n_tokens": True}, "n_tokens must be an int >= 2"),
    ({"repeat_lens": (8, 8)}, "repeat_lens must be an int or distinct ints, each >= 2"),
    ({"vocab_fraction": 0}, r"vocab_fraction must be a number in \(0, 1\]"),
    ({"threshold": float("nan")}, "threshold must be a finite number"),
])
def test_options_are_validated_like_every_family(options, message, planted):
    from mi_assert.stats.options import claim_options

    handle, _ = planted
    with pytest.raises(MiAssertInputError, match=message):
        mi_assert.assert_induction_head(handle, 1, 0, **options)
    shared = {k: v for k, v in options.items()
              if k in ("seeds", "model_seeds", "alpha", "n_resamples", "min_prompts")}
    if shared:  # the same value gives the same message in the shared validator
        with pytest.raises(MiAssertInputError) as ours:
            mi_assert.assert_induction_head(handle, 1, 0, **options)
        with pytest.raises(MiAssertInputError) as theirs:
            claim_options(**shared)
        assert str(ours.value) == str(theirs.value)


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
    ev = check_invariants(mi_assert.assert_induction_head(handle, *truth.heads("induction")[0],
                                                          prompts=tokens))
    assert ev.passed and ev.n == 8 and "given by the caller" in ev.settings["prompts"]
    with pytest.raises(AssertionError):
        mi_assert.assert_induction_head(handle, *truth.heads("previous_token")[0], prompts=tokens)


def test_explicit_prompts_with_three_seeds_report_the_prompts_once(planted):
    handle, truth = planted
    from mi_assert.prompts import repeated_tokens

    tokens = repeated_tokens(12, 9, 64, seed=3, bos_token_id=0)
    ev = check_invariants(mi_assert.assert_induction_head(
        handle, *truth.heads("induction")[0], prompts=tokens, seeds=(0, 1, 2)))
    assert ev.passed and ev.n == 12 and [r.n for r in ev.per_seed] == [12]
    assert f"n={len(tokens)} prompts" in ev.summary_line()


def test_repeated_prompts_are_refused_with_the_distinct_count(planted):
    handle, truth = planted
    from mi_assert.prompts import repeated_tokens

    one = repeated_tokens(1, 10, 64, seed=5, bos_token_id=0)
    head = truth.heads("induction")[0]
    # 16 copies of one prompt are one prompt's evidence: refused, not passed
    for fn in (mi_assert.assert_induction_head, check_induction_head):
        with pytest.raises(MiAssertInputError,
                           match=r"rests on 1 distinct prompts \(16 samples, duplicates merged\).*"
                                 r"at least 8 \(min_prompts\)"):
            fn(handle, *head, prompts=one.repeat(16, 1))
    # 4 distinct prompts, each 4 times: 4 units, still too few; with min_prompts=4 it is decided
    four = repeated_tokens(4, 10, 64, seed=6, bos_token_id=0).repeat(4, 1)
    with pytest.raises(MiAssertInputError, match="rests on 4 distinct prompts"):
        check_induction_head(handle, *head, prompts=four)
    ev = check_invariants(check_induction_head(handle, *head, prompts=four, min_prompts=4))
    assert ev.passed and ev.n == 4
    # a family refuses too, naming the row
    with pytest.raises(MiAssertInputError, match="1 distinct prompts"):
        check_induction_head(handle, [head, truth.heads("previous_token")[0]],
                             prompts=one.repeat(16, 1))
    # generated prompts: n_prompts below min_prompts is refused the same way
    with pytest.raises(MiAssertInputError, match="rests on 4 distinct prompts"):
        check_induction_head(handle, *head, n_prompts=4, seeds=(0,))


def test_every_helper_hides_its_frame():
    helpers = [assertions.check_role, assertions.judge_heads, *ASSERT.values(), *CHECK.values()]
    for fn in helpers:
        assert "__tracebackhide__" in fn.__code__.co_varnames, fn.__name__


def count_forwards(handle) -> list[int]:
    """A list that grows by one on every forward pass ``handle`` runs from now on (through
    ``_run`` or ``_capture``, the two primitives; one that calls the other counts once)."""
    calls: list[int] = []
    depth = [0]

    def counting(original):
        def run(*args, **kwargs):
            if not depth[0]:
                calls.append(1)
            depth[0] += 1
            try:
                return original(*args, **kwargs)
            finally:
                depth[0] -= 1
        return run

    handle._run = counting(handle._run)
    handle._capture = counting(handle._capture)
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
