"""Fixtures for the causal-claims tests: the planted model and its induction pairs."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def planted_pairs(planted):
    """(handle, circuit, PromptSet of 16 swap-corrupted induction pairs)."""
    from mi_assert.prompts.pairs import induction_pairs

    handle, circuit = planted
    return handle, circuit, induction_pairs(handle, seed=0, n_prompts=16)


@pytest.fixture(scope="session")
def mlp_model():
    """A small random TransformerLens model with LayerNorm and MLPs (for TL-equality tests)."""
    import torch
    from transformer_lens import HookedTransformer, HookedTransformerConfig

    cfg = HookedTransformerConfig(n_layers=3, d_model=64, d_head=16, n_heads=4, d_mlp=128,
                                  d_vocab=100, n_ctx=32, act_fn="gelu_new",
                                  normalization_type="LN", seed=0)
    model = HookedTransformer(cfg)
    with torch.no_grad():  # non-trivial biases so every site matters
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    model.eval()
    return model


def _check_evidence(ev, *, top=True):
    """Every number an Evidence prints reads true (recursively over members and rows)."""
    import math

    from mi_assert.stats.bootstrap import clears

    if not ev.reason:
        assert ev.passed == clears(ev.bound, ev.threshold, ev.alternative), ev
    if math.isfinite(ev.estimate):
        assert ev.low <= ev.estimate <= ev.high, ev
    for row in ev.per_seed:
        if row.threshold is not None:
            assert row.passed == clears(row.bound, row.threshold, row.alternative), row
        assert row.low <= row.estimate <= row.high, row
    if ev.family:
        decider = next(m for m in ev.family if m.claim == ev.deciding)
        for name in ("metric", "estimate", "low", "high", "bound", "n", "threshold",
                     "alternative", "unit"):
            assert getattr(ev, name) == getattr(decider, name), name
        assert ev.passed == all(m.passed for m in ev.family)
        for member in ev.family:
            _check_evidence(member, top=False)
    elif ev.per_seed:
        rows = ev.per_seed
        deciding = next(r for r in rows if r.name == ev.deciding) if len(rows) > 1 else rows[0]
        assert (ev.estimate, ev.low, ev.high, ev.bound, ev.n) == (
            deciding.estimate, deciding.low, deciding.high, deciding.bound, deciding.n)
        if ev.passed:  # every seed's rows passed (no quorum in these tests)
            assert all(r.passed for r in rows) or ev.settings.get("quorum")
    return ev


@pytest.fixture
def evidence_ok():
    """``evidence_ok(ev)``: assert the Evidence invariants (headline = deciding row/member)."""
    return _check_evidence
