"""Calibration of assert_patching_recovery with its defaults on planted ground truth.

100 draws = 10 planted-model seeds (head permutation + weight noise) × 10 prompt seeds
(8 induction pairs each). Per draw: one true claim (the induction head, or the previous-token
head on odd draws: both carry the whole effect on swap-corrupted pairs) and one false claim
(a distractor head drawn by seed). TPR = true claims passing; FPR = false claims passing.
"""

from __future__ import annotations

import torch

import mi_assert
from mi_assert import ClaimFailed
from mi_assert.prompts.pairs import induction_pairs

PLANTED_SEEDS = range(10)
PROMPT_SEEDS = range(10)
DISTRACTOR_ROLES = ("positional", "duplicate_token", "bos", "self", "uniform")


def _passes(handle, ps, head) -> bool:
    try:
        mi_assert.assert_patching_recovery(handle, ps, components=[head])  # defaults
        return True
    except ClaimFailed:
        return False


def test_patching_recovery_calibration():
    true_pass = false_pass = n = 0
    for model_seed in PLANTED_SEEDS:
        handle = mi_assert.load_model(f"planted-induction@s{model_seed}", device="cpu")
        gt = handle.meta["ground_truth"]
        distractors = [h for role in DISTRACTOR_ROLES for h in gt.heads(role)]
        for prompt_seed in PROMPT_SEEDS:
            draw = model_seed * 100 + prompt_seed
            ps = induction_pairs(handle, seed=draw, n_prompts=8)
            true_head = gt.heads("induction" if draw % 2 == 0 else "previous_token")[0]
            pick = int(torch.randint(0, len(distractors), (1,),
                                     generator=torch.Generator().manual_seed(draw)))
            true_pass += _passes(handle, ps, true_head)
            false_pass += _passes(handle, ps, distractors[pick])
            n += 1
    tpr, fpr = true_pass / n, false_pass / n
    print(f"\ncalibration over {n} draws: TPR {tpr:.3f} ({true_pass}/{n}), FPR {fpr:.3f} ({false_pass}/{n})")
    assert n >= 100
    assert tpr >= 0.99, f"TPR {tpr:.3f} < 0.99"
    assert fpr <= 0.01, f"FPR {fpr:.3f} > 0.01"
