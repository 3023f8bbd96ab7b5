"""``capture_activations``: the activations ``run_with_cache`` gives, without the rest of the model.

Every backend ends the forward pass once the last hook asked for is computed (the layers after
it and the unembedding never run) and returns exactly the values of a full pass.
"""

from __future__ import annotations

import pytest
import torch

from tests.backends.conftest import BACKENDS


def _tokens(batch: int = 3, pos: int = 12) -> torch.Tensor:
    tokens = torch.randint(2, 100, (batch, pos), generator=torch.Generator().manual_seed(0))
    tokens[:, 0] = 0  # BOS
    return tokens


def _layer0_hooks(handle) -> list[str]:
    return [name for name in handle.hook_names() if name.startswith("blocks.0.")] + ["hook_embed"]


def _last_layer_and_head(handle, backend: str) -> tuple[torch.nn.Module, torch.nn.Module]:
    """The GPT-2's last block and its unembedding, as the backend runs them."""
    if backend == "transformer_lens":
        return handle.model.blocks[-1], handle.model.unembed
    hf = handle.hf_model if backend == "bridge" else handle.module
    return hf.transformer.h[-1], hf.lm_head


@pytest.mark.parametrize("backend", BACKENDS)
def test_capture_equals_a_full_pass_and_stops_early(gpt2_handles: dict, backend: str) -> None:
    handle = gpt2_handles[backend]
    tokens = _tokens()
    hooks = _layer0_hooks(handle)
    _, full = handle.run_with_cache(tokens, hooks)
    last, head = _last_layer_and_head(handle, backend)
    entered: list[str] = []
    pre_hooks = [last.register_forward_pre_hook(lambda *_: entered.append("last block")),
                 head.register_forward_pre_hook(lambda *_: entered.append("unembedding"))]
    try:
        part = handle.capture_activations(tokens, hooks)
    finally:
        for h in pre_hooks:
            h.remove()
    assert set(part) == set(hooks)
    for name in hooks:
        assert torch.equal(part[name], full[name]), name
    assert entered == []
    # the model is left as it was: a full pass afterwards gives the same values again
    _, again = handle.run_with_cache(tokens, hooks)
    assert all(torch.equal(again[n], full[n]) for n in hooks)


@pytest.mark.parametrize("backend", BACKENDS)
def test_capture_equals_a_full_pass_on_every_decoder_layout(decoder_handles: dict, backend: str) -> None:
    handle = decoder_handles[backend]
    tokens = _tokens()
    hooks = [h for h in handle.hook_names() if h.startswith(("blocks.0.", "blocks.1.attn.hook_pattern"))]
    _, full = handle.run_with_cache(tokens, hooks)
    part = handle.capture_activations(tokens, hooks)
    for name in hooks:
        assert torch.equal(part[name], full[name]), name


def test_capture_of_nothing_runs_nothing(gpt2_handles: dict) -> None:
    assert gpt2_handles["transformer_lens"].capture_activations(_tokens(), []) == {}
