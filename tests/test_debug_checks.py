"""Debug mode: residual-stream identities are checked on load (alias drift is a known trap)."""

from __future__ import annotations

import pytest
import torch

from mi_assert import load_model
from mi_assert.loading import check_on_load


@pytest.mark.parametrize("spec, backend", [("planted-induction@s0", "transformer_lens"),
                                           ("tiny-gpt2", "nnsight"), ("tiny-gpt2", "bridge"),
                                           ("tiny-gpt2", "transformer_lens")])
def test_debug_load_checks_residual_identities(spec, backend):
    load_model(spec, backend=backend, device="cpu", debug=True)


def test_env_var_turns_debug_on_and_a_drifted_alias_is_caught(monkeypatch):
    monkeypatch.setenv("MI_ASSERT_DEBUG", "1")
    handle = load_model("tiny-gpt2", backend="transformer_lens", device="cpu")
    # simulate alias drift: hook_attn_out silently reads the MLP output instead
    original = handle._run

    def drifted(tokens, edits, capture, keep_graph=False):  # type: ignore[no-untyped-def]
        capture = list(capture)
        logits, cache = original(tokens, edits, [*capture, "blocks.0.hook_mlp_out"], keep_graph)
        if "blocks.0.hook_attn_out" in cache:
            cache["blocks.0.hook_attn_out"] = cache["blocks.0.hook_mlp_out"]
        return logits, {k: cache[k] for k in capture}

    handle._run = drifted  # type: ignore[method-assign]
    with pytest.raises(AssertionError, match="layer 0 resid_pre \\+ attn_out != resid_mid"):
        check_on_load(handle)
    assert torch.is_tensor(handle.forward(torch.zeros(1, 3, dtype=torch.long)))
