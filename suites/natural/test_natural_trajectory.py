"""The induction bump in ``kjv-gpt2-4l``: the final model's best induction head, claim by claim
over the training checkpoints (the README's ``--mi-checkpoints`` / ``--mi-compare`` example).

The head is the manifest's top induction head of the final checkpoint (found on the fit split).
At every checkpoint the claim runs on the confirm split at the natural-text bar of
``test_natural_heads.py`` (0.3); the expected verdict comes from the manifest's fit-split score
of that head at that step: at least ``MARGIN`` above the bar must pass, at least ``MARGIN``
below must fail, in between is recorded without an expected verdict. The head scored 0.03 to
0.06 at steps 75 to 2,400 and 0.41 at step 4,000: the report draws the bump.
"""

from __future__ import annotations

import pytest

from mi_assert.heads.assertions import check_role
from mi_assert.record import record
from mi_assert.zoo.checkpoint_list import checkpoints_of
from mi_assert.zoo.natural.prompts import CONFIRM, repeated_passages

MODEL = "kjv-gpt2-4l"
THRESHOLD = 0.3
MARGIN = 0.1
STEPS = checkpoints_of(MODEL) or [MODEL]


@pytest.fixture(scope="module")
def trajectory_prompts():
    return repeated_passages(32, 48, CONFIRM, seed=3)


@pytest.mark.mi_checkpoints(*STEPS)
@pytest.mark.mi_model(MODEL, backend="transformer_lens")
def test_induction_head_across_training(mi_model, kjv_manifest, discovered, trajectory_prompts):
    layer, head, _ = discovered["induction"][0]
    step = mi_model.spec.rsplit(":step", 1)[1] if ":step" in mi_model.spec else None
    evidence = check_role(mi_model, "induction", layer, head, prompts=trajectory_prompts,
                          threshold=THRESHOLD)
    evidence = evidence.with_context(claim=f"L{layer}H{head} is an induction head (trajectory over training)")
    record(evidence)
    key = f"step{step}" if step is not None else max(kjv_manifest["steps"], key=lambda k: int(k[4:]))
    recorded = kjv_manifest["steps"][key]["head_scores"]["induction"][layer][head]
    if recorded >= THRESHOLD + MARGIN:
        assert evidence.passed, f"{key}: manifest score {recorded:.2f} but the claim failed\n{evidence.table()}"
    elif recorded <= THRESHOLD - MARGIN:
        assert not evidence.passed, f"{key}: manifest score {recorded:.2f} but the claim passed\n{evidence.table()}"
