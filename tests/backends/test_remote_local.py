"""--mi-remote: nnsight's local simulation of the remote path gives the same results."""

from __future__ import annotations

import pytest
import torch

from mi_assert import load_model
from mi_assert.backends import Intervention
from mi_assert.errors import MiAssertInputError


def test_local_simulation_of_remote_matches_local_trace(monkeypatch):
    from nnsight.intervention.backends.local import LocalSimulationBackend

    handle = load_model("tiny-gpt2", backend="nnsight", device="cpu")
    tokens = torch.randint(0, handle.d_vocab, (2, 8), generator=torch.Generator().manual_seed(0))
    hooks = ["blocks.0.hook_resid_post", "blocks.1.attn.hook_pattern"]
    patch = [Intervention("blocks.1.attn.hook_z", 0.0, heads=[1])]
    ref_logits, ref_cache = handle.run_with_cache(tokens, hooks)
    ref_patched, _ = handle.run_with_interventions(tokens, patch)

    calls = []
    original = LocalSimulationBackend.__call__

    def counting(self, tracer):  # type: ignore[no-untyped-def]
        calls.append(1)
        return original(self, tracer)

    monkeypatch.setattr(LocalSimulationBackend, "__call__", counting)
    handle.remote = "local"
    logits, cache = handle.run_with_cache(tokens, hooks)
    patched, _ = handle.run_with_interventions(tokens, patch)
    assert len(calls) == 2, "the traces did not go through nnsight's remote (local simulation) path"
    assert torch.allclose(logits, ref_logits, atol=1e-5)
    for hook in hooks:
        assert torch.allclose(cache[hook], ref_cache[hook], atol=1e-5)
    assert torch.allclose(patched, ref_patched, atol=1e-5)


def test_remote_on_a_wrapped_hooked_transformer_is_a_clear_error():
    handle = load_model("planted-induction@s0", backend="nnsight", device="cpu")
    handle.remote = "local"
    with pytest.raises(MiAssertInputError, match="remote execution"):
        handle.forward(torch.zeros(1, 4, dtype=torch.long))


def test_mi_remote_option_routes_the_fixture_model(pytester):
    pytester.makepyfile(
        """
        import pytest
        import torch

        @pytest.mark.mi_model("tiny-gpt2", backend="nnsight", device="cpu")
        def test_remote(mi_model):
            assert mi_model.remote == "local"
            logits = mi_model.forward(torch.zeros(1, 4, dtype=torch.long))
            assert logits.shape[-1] == mi_model.d_vocab
        """
    )
    pytester.runpytest("--mi-remote", "local").assert_outcomes(passed=1)


def test_mi_remote_on_a_backend_without_remote_execution_is_a_clear_error(pytester):
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.mi_model("planted-induction@s0", device="cpu")
        def test_remote(mi_model):
            pass
        """
    )
    result = pytester.runpytest("--mi-remote", "local")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*--mi-remote local: model 'planted-induction@s0' is on backend "
                                 "'transformer_lens', which has no remote execution*"])
