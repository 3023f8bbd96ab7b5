"""Linear probes with a control task, on the planted model's previous-token subspace."""

from __future__ import annotations

import pytest
import torch

import mi_assert
from mi_assert.errors import MiAssertInputError, UnknownHookError

from .conftest import distinct_repeats


def previous_token(tokens: torch.Tensor) -> torch.Tensor:
    """Label at position p = the token at p-1 (position 0 has none: -1)."""
    return torch.cat([torch.full((tokens.shape[0], 1), -1), tokens[:, :-1]], dim=1)


@pytest.fixture(scope="module")
def probe_tokens(planted):
    handle, _ = planted
    return distinct_repeats(24, 16, handle.d_vocab, seed=11)


def test_previous_token_is_decodable_after_the_prev_token_head(planted, probe_tokens):
    handle, _ = planted
    ev = mi_assert.assert_probe_accuracy(handle, "blocks.0.hook_resid_post", probe_tokens,
                                         labels_fn=previous_token, position=None,
                                         min_accuracy=0.9)
    assert ev.passed
    assert ev.details["held-out accuracy"] > 0.95
    assert ev.details["control accuracy (shuffle)"] < 0.1
    assert ev.details["chance (majority fit label)"] < 0.1
    assert len(ev.family) == 2  # accuracy and selectivity


def test_previous_token_is_not_in_the_embedding(planted, probe_tokens):
    handle, _ = planted
    with pytest.raises(AssertionError, match="held-out accuracy"):
        mi_assert.assert_probe_accuracy(handle, "hook_embed", probe_tokens,
                                        labels_fn=previous_token, position=None)


def test_current_token_is_in_the_embedding(planted, probe_tokens):
    """Sanity for the negative above: the probe *can* read hook_embed."""
    handle, _ = planted
    ev = mi_assert.assert_probe_accuracy(handle, "hook_embed", probe_tokens,
                                         labels=probe_tokens, position=list(range(1, 33)))
    assert ev.details["held-out accuracy"] > 0.95


def test_type_control_is_hewitt_liang(planted, probe_tokens):
    """With a per-token-type control (Hewitt & Liang), a residual stream that holds the current
    token one-hot decodes the control perfectly: selectivity ~0, so the claim fails."""
    handle, _ = planted
    with pytest.raises(AssertionError) as info:
        mi_assert.assert_probe_accuracy(handle, "blocks.0.hook_resid_post", probe_tokens,
                                        labels_fn=previous_token, position=None, control="type")
    details = info.value.evidence.details
    assert details["control accuracy (type)"] > 0.9
    assert details["held-out accuracy"] > 0.95


def test_split_prompts_and_single_position(planted):
    from mi_assert.prompts.generators import make_split

    handle, _ = planted
    split = make_split(handle, "repeated", seed=5, n_prompts=16, repeat_len=12)
    ev = mi_assert.assert_probe_accuracy(handle, "blocks.1.hook_resid_post", split,
                                         labels_fn=previous_token, position=[5, 6, 7, 8, 9, 10])
    assert ev.passed
    assert "unseen seed" in ev.details["split"]


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
    ({"heldout_fraction": 0.01}, "held-out", MiAssertInputError),
])
def test_bad_input(planted, probe_tokens, kwargs, match, exc):
    handle, _ = planted
    args = {"hook": "blocks.0.hook_resid_post", "labels_fn": previous_token, "position": None,
            **kwargs}
    hook = args.pop("hook")
    with pytest.raises(exc, match=match):
        mi_assert.assert_probe_accuracy(handle, hook, probe_tokens, **args)
