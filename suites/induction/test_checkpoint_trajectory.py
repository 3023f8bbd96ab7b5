"""The induction head forming during training, claim by claim across the zoo's checkpoints.

``attn-only-2l-induction@s0`` keeps intermediate checkpoints (steps 0..1000). The claim is the
final model's induction head (found by ``find_heads`` on fit prompts of the *final* model), checked
on held-out prompts at every checkpoint; the report draws its trajectory. The expected verdict
at each step comes from the training manifest, which measured the same head's induction score
at training time on independent prompts: a step whose recorded min-over-lengths score is at
least ``MARGIN`` above the 0.4 threshold must pass, one at least ``MARGIN`` below must fail;
steps within ``MARGIN`` of the threshold are recorded in the report without an expected verdict.
"""

from __future__ import annotations

import json

import pytest

import mi_assert
from mi_assert.heads.assertions import check_role
from mi_assert.record import record
from mi_assert.zoo.checkpoint_list import checkpoints_of
from mi_assert.zoo.registry import MANIFEST_PATH

MODEL = "attn-only-2l-induction@s0"
THRESHOLD = 0.4
MARGIN = 0.15
STEPS = checkpoints_of(MODEL) + [MODEL]


def _manifest_score(step: int | None, head: int) -> float | None:
    if not MANIFEST_PATH.exists():
        return None
    entry = json.loads(MANIFEST_PATH.read_text())["models"]["attn-only-2l-induction"]["s0"]
    metrics = entry["metrics"] if step is None else entry["intermediate"].get(str(step))
    if metrics is None:
        return None
    return min(scores[1][head] for scores in metrics["induction_scores"].values())


@pytest.fixture(scope="module")
def final_head() -> int:
    try:
        final = mi_assert.load_model(MODEL, device="cpu")
    except mi_assert.ModelUnavailableError as exc:
        pytest.skip(str(exc))
    layer, head, _ = mi_assert.find_heads(final, "induction", top_k=1, seed=0)[0]
    assert layer == 1
    return head


@pytest.mark.mi_checkpoints(*STEPS)
def test_final_induction_head_across_training(mi_model, final_head):
    step = int(mi_model.spec.split(":step")[1]) if ":step" in mi_model.spec else None
    evidence = check_role(mi_model, "induction", 1, final_head)
    evidence = evidence.with_context(claim=f"L1H{final_head} is an induction head (trajectory over training)")
    record(evidence)
    recorded = _manifest_score(step, final_head)
    assert recorded is not None, f"manifest has no induction scores for step {step}"
    if recorded >= THRESHOLD + MARGIN:
        assert evidence.passed, f"step {step}: manifest score {recorded:.2f} but the claim failed\n{evidence.table()}"
    elif recorded <= THRESHOLD - MARGIN:
        assert not evidence.passed, f"step {step}: manifest score {recorded:.2f} but the claim passed\n{evidence.table()}"
