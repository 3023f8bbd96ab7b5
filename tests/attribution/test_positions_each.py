"""Attribution patching with ``positions="each"`` against exact patching, position by position.

On the planted model the last layer feeds the logits linearly (no layer norm, the unembedding
reads the residual stream directly, and a head's output is linear in its attention pattern
for fixed values), so for a metric that is linear in the logits attribution patching is *exact*
at layer 1: every cell of the attribution sweep must equal the exact sweep's cell. The metric
reads many positions with different weights, so the per-position values differ and a sweep
whose positions were permuted (e.g. reversed) cannot match.
"""

from __future__ import annotations

import pytest
import torch

import mi_assert
from mi_assert.prompts.pairs import induction_pairs

#: the planted model is fp32; attribution = exact up to rounding where the model is linear
ATOL = 1e-3


#: tiny models: one torch thread is ~10x faster than several on a loaded CPU
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def pairs_and_metric(planted):
    """Swap-corrupted induction pairs (BOS + 12 + 8 tokens) and a metric summing, with weights
    1..2, the logit of the clean next token at every second-half position."""
    handle, _ = planted
    ps = induction_pairs(handle, seed=0, n_prompts=16, repeat_len=12, prefix_len=8)
    n_pos = ps.clean.shape[1]
    positions = torch.arange(13, n_pos - 1)
    targets = ps.clean[:, positions + 1]
    weights = torch.linspace(1.0, 2.0, len(positions))

    def metric(logits: torch.Tensor) -> torch.Tensor:
        at = logits[:, positions].float()
        return (at.gather(-1, targets[..., None])[..., 0] * weights).sum(-1)

    return handle, ps, metric


def _sweeps(handle, ps, metric, site):
    exact = mi_assert.patching_sweep(handle, ps.clean, ps.corrupted, metric, site,
                                     positions="each")
    attr = mi_assert.patching_sweep(handle, ps.clean, ps.corrupted, metric, site,
                                    method="attribution", positions="each")
    return exact, attr


@pytest.mark.parametrize(("site", "axes", "pos_axis"), [
    ("head_out", ("layer", "pos", "head"), 0),
    ("attn_out", ("layer", "pos"), 0),
    ("resid_post", ("layer", "pos"), 0),
    ("head_pattern", ("layer", "head", "dest_pos"), 1),
])
def test_attribution_each_position_equals_exact_patching_where_linear(pairs_and_metric, site,
                                                                      axes, pos_axis):
    handle, ps, metric = pairs_and_metric
    exact, attr = _sweeps(handle, ps, metric, site)
    n_pos = ps.clean.shape[1]
    assert exact.axes == attr.axes == axes
    assert exact.values.shape == attr.values.shape
    assert attr.values.shape[1 + pos_axis] == n_pos
    assert attr.corrupted_value == pytest.approx(exact.corrupted_value)
    last = exact.values[1] - exact.corrupted_value  # layer 1: [pos, ...] or [head, dest_pos]
    estimate = attr.delta[1]
    # the sweep varies along positions: several positions with distinct, non-zero effects
    per_pos = last.abs().amax(dim=1 - pos_axis) if last.ndim == 2 else last.abs()
    nonzero = per_pos[per_pos > 0.1]
    assert nonzero.numel() >= 3 and len({round(float(v), 2) for v in nonzero}) >= 3
    assert not torch.allclose(last, last.flip(pos_axis), atol=0.1)
    # position by position, cell by cell: the first-order estimate is the exact effect
    for p in range(n_pos):
        got = estimate.select(pos_axis, p)
        want = last.select(pos_axis, p)
        assert torch.allclose(got, want, atol=ATOL), (site, p, got, want)
    assert torch.allclose(attr.values[1], exact.values[1], atol=ATOL)


def test_attribution_each_sums_to_attribution_all(pairs_and_metric):
    """Attribution is additive over positions: ``each`` summed over positions is ``all``."""
    handle, ps, metric = pairs_and_metric
    each = mi_assert.patching_sweep(handle, ps.clean, ps.corrupted, metric, "head_out",
                                    method="attribution", positions="each")
    whole = mi_assert.patching_sweep(handle, ps.clean, ps.corrupted, metric, "head_out",
                                     method="attribution", positions="all")
    assert torch.allclose(each.delta.sum(1), whole.delta, atol=ATOL)
