"""The lazy activation cache behind ``mi_cache``: canonical hook names and component names."""

from __future__ import annotations

import pytest
import torch

from mi_assert.cache import LazyActivationCache
from mi_assert.errors import MiAssertInputError


@pytest.fixture()
def cache(planted):
    handle, _ = planted
    tokens = torch.randint(1, handle.d_vocab, (4, 12), generator=torch.Generator().manual_seed(0))
    return LazyActivationCache(handle, tokens)


def test_component_names_resolve_to_their_hooks(cache):
    short = cache["resid_pre1"]
    assert cache.n_forward_passes == 1
    assert torch.equal(short, cache["blocks.1.hook_resid_pre"])
    assert cache.n_forward_passes == 1  # the same hook: no second pass
    assert "resid_pre1" in cache and "blocks.1.hook_resid_pre" in cache
    assert cache.hook_name("attn0") == "blocks.0.hook_attn_out"
    assert cache.hook_name("L1H0") == cache.hook_name("1:0") == "blocks.1.attn.hook_z"


def test_unknown_names_are_refused_with_the_allowed_forms(cache):
    with pytest.raises(MiAssertInputError, match="layer 99 is out of range"):
        cache["resid_pre99"]
    with pytest.raises(MiAssertInputError):
        cache["blocks.0.hook_nope"]
    assert "nope" not in cache


def test_reads_stop_at_the_deepest_hook_and_logits_come_on_request(planted):
    handle, _ = planted
    tokens = torch.randint(1, handle.d_vocab, (4, 12), generator=torch.Generator().manual_seed(0))
    lazy = LazyActivationCache(handle, tokens)
    entered: list[str] = []
    pre_hooks = [handle.model.blocks[-1].register_forward_pre_hook(lambda *_: entered.append("last")),
                 handle.model.unembed.register_forward_pre_hook(lambda *_: entered.append("unembed"))]
    try:
        resid = lazy["blocks.0.hook_resid_post"]
        assert entered == [] and lazy.n_forward_passes == 1
        _, full = handle.run_with_cache(tokens, ["blocks.0.hook_resid_post"])
        assert torch.equal(resid, full["blocks.0.hook_resid_post"])
        entered.clear()
        assert torch.equal(lazy.logits, handle.forward(tokens))
        assert lazy.n_forward_passes == 2 and entered.count("unembed") == 2
    finally:
        for h in pre_hooks:
            h.remove()
