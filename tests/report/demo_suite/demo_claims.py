"""A demo suite for the HTML report (run by scripts/run_suites.sh and screenshot_report.sh;
not collected by the project's tests: the file name does not start with ``test_``).

It draws every kind of picture the report has: attention patterns and per-prompt score
histograms (heads family), a layer x head heatmap, per-seed intervals, and a claim trajectory
across checkpoints. The checkpoint sweep uses the trained zoo model's saved steps when they
exist, else planted-model folders with the induction head's W_Q scaled up over "training".
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.report.helpers import CLAIMS_MODULE

_claims: dict = {}
exec(compile(CLAIMS_MODULE, "claims_module", "exec"), _claims)  # noqa: S102 - our own helper source
assert_induction = _claims["assert_induction"]


def _sweep_pattern() -> str:
    from mi_assert.zoo.checkpoint_list import checkpoints_of

    if checkpoints_of("attn-only-2l-induction@s0"):
        return "attn-only-2l-induction@s0:step*"
    from tests.report.helpers import save_planted_checkpoint

    root = Path(os.environ.get("MI_DEMO_CHECKPOINTS", Path(__file__).resolve().parents[3] / "reports" / ".demo_checkpoints"))
    for step, scale in ((100, 0.3), (200, 0.45), (300, 0.55), (400, 0.7), (500, 1.0)):
        if not (root / f"step{step}" / "model.safetensors").exists():
            save_planted_checkpoint(root / f"step{step}", q_scale=scale)
    return str(root / "step*")


SWEEP = _sweep_pattern()


@pytest.mark.mi_model("planted-induction@s0")
@pytest.mark.mi_seeds(0, 1, 2)
def test_planted_induction_head_family(mi_model, mi_seed):
    """The heads family's own assertion on the planted ground truth."""
    from mi_assert import assert_induction_head

    layer, head = mi_model.meta["ground_truth"].heads("induction")[0]
    assert_induction_head(mi_model, layer, head, seeds=(mi_seed,))


@pytest.mark.mi_model("planted-induction@s0")
def test_induction_claim_with_figures(mi_model):
    assert_induction(mi_model, 1, 0, seeds=(0, 1, 2))


@pytest.mark.mi_model("planted-induction@s0")
def test_false_claim_is_reported(mi_model):
    """A deliberately false claim (a previous-token head is no induction head): shows a FAIL."""
    prev = mi_model.meta["ground_truth"].heads("previous_token")[0]
    assert_induction(mi_model, *prev, seeds=(0, 1))


@pytest.mark.mi_checkpoints(SWEEP)
def test_induction_over_training(mi_model):
    """The final model's best layer-1 induction head (chosen on seed 100), tracked over training
    and tested on held-out seeds 0 and 1."""
    spec = mi_model.spec.split(":")[0]
    if spec.startswith("attn-only-2l-induction"):
        from mi_assert import load_model

        final = load_model(spec, device="cpu")
        head = int(_claims["induction_scores"](final, 1, 100)[0].mean(0).argmax())
    else:
        head = 0
    assert_induction(mi_model, 1, head, seeds=(0, 1))
