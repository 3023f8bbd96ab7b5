"""The causal metrics on fixed logits, pinned (see ``tests/snapshot.py``): every per-prompt
value (logit difference, log-probability, probability, KL to the clean run; fixed and
per-prompt positions) and every refusal message.

Update after an intended change: ``MI_ASSERT_UPDATE_SNAPSHOTS=1 python -m pytest
tests/causal/test_metrics_snapshot.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch

from mi_assert.causal import metrics as cm
from tests.snapshot import check_case, raised, snapshot_file

snapshot = snapshot_file(Path(__file__).parent / "snapshots" / "metrics.json")

LOGITS = torch.randn(4, 5, 7, generator=torch.Generator().manual_seed(0))
OTHER = torch.randn(4, 5, 7, generator=torch.Generator().manual_seed(1))
CORRECT, WRONG = torch.tensor([1, 2, 3, 4]), torch.tensor([0, 0, 6, 5])
PER_PROMPT = torch.tensor([4, 3, -1, 0])


def _values(metric: Any, logits: torch.Tensor = LOGITS) -> list[float]:
    return cm.evaluate_metric(metric, logits).tolist()


def case_values() -> Any:
    kl = cm.kl_to_clean(LOGITS)
    kl_at = cm.kl_to_clean(LOGITS[:, 2], position=2)
    return {
        "logit_diff": _values(cm.logit_diff(CORRECT, WRONG)),
        "logit_diff one id": _values(cm.logit_diff(3, 0, position=1)),
        "logit_diff per prompt": _values(cm.logit_diff(CORRECT, WRONG, position=PER_PROMPT)),
        "logprob": _values(cm.logprob(CORRECT)),
        "logprob per prompt": _values(cm.logprob(CORRECT, position=PER_PROMPT)),
        "prob": _values(cm.prob(CORRECT, position=0)),
        "kl clean": _values(kl),
        "kl other": _values(kl, OTHER),
        "kl at position": _values(kl_at, OTHER),
        "kl per prompt": _values(cm.kl_to_clean(LOGITS, position=PER_PROMPT), OTHER),
        "callable": _values(lambda lg: lg[:, -1, 0]),
        "names": [cm.metric_name(m) for m in (cm.logit_diff(1, 0), cm.prob(1, position=PER_PROMPT),
                                              cm.kl_to_clean(LOGITS), _values, len)],
        "repr": [repr(cm.logprob(2, position=3)), repr(cm.logit_diff(1, 0, position=PER_PROMPT))],
    }


def case_named_metrics() -> Any:
    prompts = SimpleNamespace(correct=CORRECT, wrong=WRONG)
    only_correct = SimpleNamespace(correct=CORRECT, wrong=None)
    out: dict[str, Any] = {name: _values(cm.metric_for_prompts(name, prompts, position=-2))
                           for name in ("logit_diff", "logprob", "prob")}
    out["callable passes"] = cm.metric_for_prompts(len, prompts) is len
    out["unknown"] = raised(lambda: cm.metric_for_prompts("logit_dif", prompts))
    out["not a name"] = raised(lambda: cm.metric_for_prompts(3, prompts))
    out["no wrong"] = raised(lambda: cm.metric_for_prompts("logit_diff", only_correct))
    out["no correct"] = raised(lambda: cm.metric_for_prompts("prob", SimpleNamespace()))
    out["logprob without wrong"] = _values(cm.metric_for_prompts("logprob", only_correct))
    return out


def case_refusals() -> Any:
    cases: dict[str, Callable[[], Any]] = {
        "float position": lambda: cm.logit_diff(1, 0, position=torch.tensor([0.5])),
        "2-d position": lambda: cm.logit_diff(1, 0, position=torch.zeros(2, 2, dtype=torch.long)),
        "bool position": lambda: cm.logit_diff(1, 0, position=True),
        "text position": lambda: cm.logit_diff(1, 0, position="last"),
        "position out of range": lambda: cm.logit_diff(1, 0, position=5)(LOGITS),
        "negative position out of range": lambda: cm.logit_diff(1, 0, position=-6)(LOGITS),
        "per-prompt count": lambda: cm.logit_diff(1, 0, position=PER_PROMPT[:3])(LOGITS),
        "per-prompt out of range": lambda: cm.logit_diff(1, 0, position=PER_PROMPT + 2)(LOGITS),
        "per-prompt below range": lambda: cm.logit_diff(1, 0, position=PER_PROMPT - 5)(LOGITS),
        "2-d logits": lambda: cm.logit_diff(1, 0)(LOGITS[:, 0]),
        "float ids": lambda: cm.logit_diff(torch.tensor([0.5]), 0),
        "2-d ids": lambda: cm.logprob(torch.zeros(2, 2, dtype=torch.long)),
        "ids count": lambda: cm.logit_diff(CORRECT[:2], 0)(LOGITS),
        "id too big": lambda: cm.logit_diff(7, 0)(LOGITS),
        "id negative": lambda: cm.logprob(-1)(LOGITS),
        "kl not a tensor": lambda: cm.kl_to_clean(LOGITS.tolist()),
        "kl 1-d": lambda: cm.kl_to_clean(LOGITS[0, 0]),
        "kl 4-d": lambda: cm.kl_to_clean(LOGITS[None]),
        "kl other prompts": lambda: cm.kl_to_clean(LOGITS)(OTHER[:2]),
        "metric returns list": lambda: cm.evaluate_metric(lambda lg: [1.0], LOGITS),
        "metric returns scalar": lambda: cm.evaluate_metric(lambda lg: lg.mean(), LOGITS),
        "metric returns 2-d": lambda: cm.evaluate_metric(lambda lg: lg[:, :, 0], LOGITS),
        "metric wrong batch": lambda: cm.evaluate_metric(lambda lg: lg[:, 0, 0], LOGITS, batch=3),
        "metric nan": lambda: cm.evaluate_metric(lambda lg: lg[:, 0, 0] * float("nan"), LOGITS),
    }
    return {name: raised(fn) for name, fn in cases.items()}


CASES: dict[str, Callable[[], Any]] = {
    name[len("case_"):]: fn for name, fn in globals().items()
    if name.startswith("case_") and callable(fn)}


@pytest.mark.parametrize("name", sorted(CASES))
def test_metrics_match_snapshot(name: str, snapshot: dict[str, Any]) -> None:
    check_case(name, CASES[name], snapshot)


def test_snapshot_has_no_stale_cases(snapshot: dict[str, Any]) -> None:
    assert set(snapshot) <= set(CASES), f"snapshot cases without a test: {set(snapshot) - set(CASES)}"
