"""Linear probes with a control task, on the planted model's previous-token subspace."""

from __future__ import annotations

import pytest
import torch

import mi_assert
from mi_assert.causal.probes import check_probe_accuracy, measure_probe_accuracy
from mi_assert.errors import MiAssertInputError, UnknownHookError
from mi_assert.verdict import ClaimFailed
from tests.evidence_contract import check_evidence as check_invariants

from .conftest import distinct_repeats

ACCURACY = "held-out probe accuracy"


def previous_token(tokens: torch.Tensor) -> torch.Tensor:
    """Label at position p = the token at p-1 (position 0 has none: -1)."""
    return torch.cat([torch.full((tokens.shape[0], 1), -1), tokens[:, :-1]], dim=1)


def corrupted_previous_token(tokens: torch.Tensor) -> torch.Tensor:
    """The previous token, with 20% of the labels replaced by a random token (seeded): no probe
    can reach more than about 80% held-out accuracy, yet the labels stay far above chance."""
    labels = previous_token(tokens)
    gen = torch.Generator().manual_seed(0)
    swap = torch.rand(labels.shape, generator=gen) < 0.2
    noise = torch.randint(1, 64, labels.shape, generator=gen)
    return torch.where(swap & (labels >= 0), noise, labels)


@pytest.fixture(scope="module")
def probe_tokens(planted):
    handle, _ = planted
    return distinct_repeats(24, 16, handle.d_vocab, seed=11)


def test_previous_token_is_decodable_after_the_prev_token_head(planted, probe_tokens):
    handle, _ = planted
    ev = mi_assert.assert_probe_accuracy(handle, "blocks.0.hook_resid_post", probe_tokens,
                                         labels_fn=previous_token, position=None,
                                         min_accuracy=0.9)
    check_invariants(ev)
    assert ev.passed
    assert ev.details["held-out accuracy"] > 0.95
    assert ev.details["control accuracy (shuffle)"] < 0.1
    assert ev.details["chance (majority fit label)"] < 0.1
    accuracy, selectivity = ev.family
    assert (accuracy.metric, accuracy.threshold) == (ACCURACY, 0.9)
    assert selectivity.metric == "selectivity (accuracy - shuffle control accuracy)"
    assert selectivity.threshold == 0.0 and selectivity.estimate > 0.85
    assert ev.n == 12 and ev.unit == "prompts"  # the held-out half of 24 prompts


def test_previous_token_is_not_in_the_embedding(planted, probe_tokens):
    """The embedding holds the current token only: a probe for the previous one stays near
    chance (1/64), far below 50%. The accuracy member decides, in its own units."""
    handle, _ = planted
    with pytest.raises(ClaimFailed, match=ACCURACY) as info:
        mi_assert.assert_probe_accuracy(handle, "hook_embed", probe_tokens,
                                        labels_fn=previous_token, position=None,
                                        min_accuracy=0.5)
    ev = info.value.evidence
    check_invariants(ev)
    assert ev.deciding == "accuracy > 0.500 (min_accuracy)"
    assert (ev.metric, ev.threshold) == (ACCURACY, 0.5)
    assert ev.high < 0.1 and ev.bound < 0.1
    assert "held-out probe accuracy = 0.0" in ev.summary_line()


def test_accuracy_decides_when_selectivity_holds(planted, probe_tokens):
    """Corrupted labels: the probe beats the control by far (selectivity passes) but cannot
    reach 95% accuracy; the headline is the accuracy against 0.95, not the selectivity."""
    handle, _ = planted
    ev = check_probe_accuracy(handle, "blocks.0.hook_resid_post", probe_tokens,
                              labels_fn=corrupted_previous_token, position=None,
                              min_accuracy=0.95)
    check_invariants(ev)
    accuracy, selectivity = ev.family
    assert not accuracy.passed and selectivity.passed and selectivity.bound > 0.5
    assert not ev.passed and ev.deciding == accuracy.claim
    assert (ev.metric, ev.threshold, ev.estimate, ev.bound) == (
        ACCURACY, 0.95, accuracy.estimate, accuracy.bound)
    assert 0.6 < ev.estimate < 0.85
    # the true claim on the same labels: well above 50% and above the control
    ok = mi_assert.assert_probe_accuracy(handle, "blocks.0.hook_resid_post", probe_tokens,
                                         labels_fn=corrupted_previous_token, position=None,
                                         min_accuracy=0.5)
    check_invariants(ok)
    assert ok.passed


def test_current_token_is_in_the_embedding(planted, probe_tokens):
    """Sanity for the negative above: the probe *can* read hook_embed."""
    handle, _ = planted
    ev = mi_assert.assert_probe_accuracy(handle, "hook_embed", probe_tokens,
                                         labels=probe_tokens, position=list(range(1, 33)))
    assert ev.details["held-out accuracy"] > 0.95


def test_type_control_is_hewitt_liang(planted, probe_tokens):
    """With a per-token-type control (Hewitt & Liang), a residual stream that holds the current
    token one-hot decodes the control about as well as the probe: selectivity is ~0 by
    construction, so a claim of a real selectivity (> 0.5) is clearly false and fails."""
    handle, _ = planted
    with pytest.raises(ClaimFailed, match="selectivity") as info:
        mi_assert.assert_probe_accuracy(handle, "blocks.0.hook_resid_post", probe_tokens,
                                        labels_fn=previous_token, position=None, control="type",
                                        min_selectivity=0.5)
    ev = info.value.evidence
    check_invariants(ev)
    details = ev.details
    assert details["control accuracy (type)"] > 0.9
    assert details["held-out accuracy"] > 0.95
    # selectivity decides, labelled as selectivity against its own threshold, far below it
    accuracy, selectivity = ev.family
    assert accuracy.passed and not selectivity.passed
    assert ev.deciding == selectivity.claim == "selectivity > 0.5"
    assert ev.metric == "selectivity (accuracy - type control accuracy)"
    assert ev.threshold == 0.5 and abs(ev.estimate) < 0.05 and ev.high < 0.1
    assert ev.summary_line().startswith(
        f"{ev.claim}: deciding member 'selectivity > 0.5': selectivity (accuracy - type")
    # at the default threshold 0 the true selectivity sits on the threshold itself, so the
    # verdict there is a coin toss of the split (the bound can equal 0); only the interval is
    # robust: it holds no selectivity worth the name
    default = check_probe_accuracy(handle, "blocks.0.hook_resid_post", probe_tokens,
                                   labels_fn=previous_token, position=None, control="type")
    sel = default.family[1]
    assert sel.threshold == 0.0 and sel.high < 0.05 and sel.low > -0.1


def test_split_prompts_and_single_position(planted):
    from mi_assert.prompts.generators import make_split

    handle, _ = planted
    split = make_split(handle, "repeated", seed=5, n_prompts=16, repeat_len=12)
    ev = mi_assert.assert_probe_accuracy(handle, "blocks.1.hook_resid_post", split,
                                         labels_fn=previous_token, position=[5, 6, 7, 8, 9, 10])
    check_invariants(ev)
    assert ev.passed and ev.details["held-out accuracy"] > 0.7
    assert "unseen seed" in ev.details["split"]
    assert ev.n == 16  # every held-out prompt of the split


def test_measure_returns_per_prompt_accuracies_per_seed(planted, probe_tokens):
    handle, _ = planted
    meas = measure_probe_accuracy(handle, "blocks.0.hook_resid_post", probe_tokens,
                                  labels_fn=previous_token, position=None, seeds=[0, 1])
    assert set(meas.per_seed) == {0, 1}
    rows = {tuple(r) for r in probe_tokens.tolist()}
    for res in meas.per_seed.values():
        assert res.accuracy.shape == res.control_accuracy.shape == (12,)
        assert len(res.units) == 12 and set(res.units) <= rows
        assert res.accuracy.mean() > 0.95 and res.control_accuracy.mean() < 0.1
        # per-prompt accuracy over 32 labelled positions: multiples of 1/32
        assert ((res.accuracy * 32) % 1 == 0).all()
    # each seed draws its own split
    assert set(meas.per_seed[0].units) != set(meas.per_seed[1].units)
    ev = check_probe_accuracy(handle, "blocks.0.hook_resid_post", probe_tokens,
                              labels_fn=previous_token, position=None, seeds=[0, 1])
    check_invariants(ev)
    for member in ev.family:
        assert [r.seed for r in member.per_seed] == [0, 1]
    assert ev.family[0].per_seed[1].estimate == pytest.approx(meas.per_seed[1].accuracy.mean())
    alias = check_probe_accuracy(handle, "blocks.0.hook_resid_post", probe_tokens,
                                 labels_fn=previous_token, position=None, seed=1)
    assert alias.to_dict() == check_probe_accuracy(
        handle, "blocks.0.hook_resid_post", probe_tokens, labels_fn=previous_token,
        position=None, seeds=[1]).to_dict()
    with pytest.raises(MiAssertInputError, match="distinct"):
        measure_probe_accuracy(handle, "blocks.0.hook_resid_post", probe_tokens,
                               labels_fn=previous_token, position=None, seeds=[2, 2])


def test_duplicated_held_out_prompts_are_refused(planted, probe_tokens):
    handle, _ = planted
    copies = probe_tokens[:3].repeat(8, 1)  # 24 prompts, 3 distinct
    with pytest.raises(MiAssertInputError, match="distinct prompts"):
        check_probe_accuracy(handle, "hook_embed", copies, labels=copies,
                             position=list(range(1, 33)))


def test_deterministic_for_a_seed(planted, probe_tokens):
    handle, _ = planted
    runs = [mi_assert.assert_probe_accuracy(handle, "blocks.0.hook_resid_post", probe_tokens,
                                            labels_fn=previous_token, position=None,
                                            seed=3).to_dict() for _ in range(2)]
    assert runs[0] == runs[1]


@pytest.mark.parametrize("kwargs, match, exc", [
    ({"hook": "blocks.0.hook_resid_pots"}, "unknown hook", UnknownHookError),
    ({"hook": "blocks.5.hook_resid_post"}, "layer 5 is out of range", MiAssertInputError),
    ({"labels": torch.zeros(5, dtype=torch.long), "labels_fn": None}, "labels has shape", MiAssertInputError),
    ({"labels": torch.zeros(24, 33, dtype=torch.long)}, "exactly one of", MiAssertInputError),
    ({"position": 33}, "position 33 is out of range", MiAssertInputError),
    ({"control": "random"}, "control 'random'", MiAssertInputError),
    ({"min_accuracy": 1.2}, "min_accuracy", MiAssertInputError),
    ({"min_accuracy": 1.0}, "min_accuracy=1.0: threshold 1 is outside the range", MiAssertInputError),
    ({"min_selectivity": 1.0}, "min_selectivity=1.0: threshold 1 is outside", MiAssertInputError),
    ({"min_selectivity": -1.5}, "min_selectivity", MiAssertInputError),
    ({"seeds": [0, 0]}, "seeds must be distinct", MiAssertInputError),
    ({"seed": 1, "seeds": [1]}, "not both", MiAssertInputError),
    ({"alpha": 0.5}, "alpha", MiAssertInputError),
    ({"min_prompts": 1}, "min_prompts", MiAssertInputError),
    ({"heldout_fraction": 0.01}, "held-out", MiAssertInputError),
])
def test_bad_input(planted, probe_tokens, kwargs, match, exc):
    handle, _ = planted
    args = {"hook": "blocks.0.hook_resid_post", "labels_fn": previous_token, "position": None,
            **kwargs}
    hook = args.pop("hook")
    with pytest.raises(exc, match=match):
        mi_assert.assert_probe_accuracy(handle, hook, probe_tokens, **args)
