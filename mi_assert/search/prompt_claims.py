"""Per-prompt claims for counterexample search: ``claim(handle, tokens) -> Tensor[batch]``.

A claim returns one *margin* per prompt: positive where the claim holds on that prompt, zero
or negative where it does not. The search minimises the margin, so its size should say how
far a prompt is from failing, not only whether it fails.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from mi_assert.backends import ModelHandle
from mi_assert.causal.components import parse_components
from mi_assert.causal.interventions import hooks_of, patched_logits
from mi_assert.causal.metrics import evaluate_metric, logit_diff
from mi_assert.errors import MiAssertInputError
from mi_assert.heads.scores import detection_pattern, resolve_role

PromptClaim = Callable[[ModelHandle, Tensor], Tensor]
#: head roles defined by where the head attends (copying is about its output, not its attention)
ATTENTION_ROLES = ("induction", "previous_token", "duplicate_token", "bos")
#: answer ids: one id / one-token string for every prompt, a Tensor[batch], or tokens -> ids
Answers = int | str | Tensor | Callable[[Tensor], Any]


def _check_fraction(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 < value <= 1.0:
        raise MiAssertInputError(f"{name} must be a number in (0, 1] (a share of attention); "
                                 f"got {value!r}")
    return float(value)


class AttentionMargin:
    """Margin of "head (layer, head) puts at least ``min_attention`` on its role's targets at
    every query that has one" (``role``: induction, previous_token, duplicate_token, bos; the
    targets are TransformerLens's detection patterns): per prompt, the least attention mass on
    the targets over those query positions, minus ``min_attention``. The least (not the mean)
    because the claim is about every position; a head that misses one position is a
    counterexample."""

    def __init__(self, layer: int, head: int, min_attention: float = 0.5,
                 role: str = "induction") -> None:
        self.layer, self.head = int(layer), int(head)
        self.min_attention = _check_fraction("min_attention", min_attention)
        self.role = resolve_role(role)
        if self.role not in ATTENTION_ROLES:
            raise MiAssertInputError(f"attention_margin needs a role with attention targets; got "
                                     f"{role!r}, allowed: {', '.join(ATTENTION_ROLES)}")
        role_text = "" if self.role == "induction" else f", role={self.role}"
        self.__name__ = (f"attention_margin(L{self.layer}H{self.head}, "
                         f"min_attention={self.min_attention:g}{role_text})")

    def __call__(self, handle: ModelHandle, tokens: Tensor) -> Tensor:
        handle.check_head(self.layer, self.head)
        det = detection_pattern(self.role, tokens.cpu())  # [batch, q, k]
        has_target = det.sum(-1) > 0  # [batch, q]
        empty = (~has_target.any(-1)).nonzero().flatten().tolist()
        if empty:
            raise MiAssertInputError(
                f"{len(empty)} prompt(s) (e.g. #{empty[0]}: {tokens[empty[0]].tolist()}) have no "
                f"position with a {self.role} target; attention_margin(role={self.role!r}) needs "
                "prompts that have one (induction and duplicate_token: repeated tokens, e.g. "
                "mi_assert.strategies.repeated_token_prompts; previous_token and bos: length >= 2)")
        hook = f"blocks.{self.layer}.attn.hook_pattern"
        _, cache = handle.run_with_cache(tokens, [hook])
        pattern = cache[hook][:, self.head].float().cpu()  # [batch, q, k]
        mass = (pattern * det).sum(-1)  # attention on the targets, per query
        least = mass.masked_fill(~has_target, float("inf")).amin(-1)
        return least - self.min_attention

    def figure(self, handle: ModelHandle, tokens: Tensor) -> dict[str, Any]:
        """The head's attention on one prompt (``[1, pos]``), as a report ``pattern`` figure."""
        hook = f"blocks.{self.layer}.attn.hook_pattern"
        _, cache = handle.run_with_cache(tokens, [hook])
        labels = _token_labels(handle, tokens[0])
        return {"kind": "pattern", "data": cache[hook][0, self.head].float().cpu(),
                "tokens": labels, "labels": [f"L{self.layer}H{self.head}"],
                "xlabel": "key position", "ylabel": "query position",
                "title": f"L{self.layer}H{self.head} attention on the counterexample"}

    def __repr__(self) -> str:
        return self.__name__


def _token_labels(handle: ModelHandle, ids: Tensor) -> list[str]:
    tok = handle.tokenizer
    if tok is None:
        return [str(int(i)) for i in ids]
    try:
        return [str(tok.decode([int(i)])) for i in ids]
    except Exception:  # a tokenizer that cannot decode one id: show the ids
        return [str(int(i)) for i in ids]


def attention_margin(layer: int, head: int, min_attention: float = 0.5,
                     role: str = "induction") -> AttentionMargin:
    """Claim "the head attends its role's targets (default: the induction target) with at
    least ``min_attention`` at every position" as a per-prompt margin (see
    :class:`AttentionMargin`)."""
    return AttentionMargin(layer, head, min_attention, role)


class LogitDiffMargin:
    """Margin of "the model prefers ``correct`` over ``wrong`` at ``position``": the logit
    difference per prompt. Answers may be callables of the tokens, because searched prompts
    differ from draw to draw (e.g. ``lambda t: t[:, 1]`` for the first repeated token)."""

    def __init__(self, correct: Answers, wrong: Answers, position: int = -1) -> None:
        self.correct, self.wrong, self.position = correct, wrong, position
        self.__name__ = f"logit_diff_margin({_describe(correct)}, {_describe(wrong)})"

    def __call__(self, handle: ModelHandle, tokens: Tensor) -> Tensor:
        correct = self.correct(tokens) if callable(self.correct) else self.correct
        wrong = self.wrong(tokens) if callable(self.wrong) else self.wrong
        metric = logit_diff(_per_prompt(correct, tokens), _per_prompt(wrong, tokens),
                            self.position).bind(handle)
        return evaluate_metric(metric, handle.forward(tokens)).cpu()

    def __repr__(self) -> str:
        return self.__name__


def logit_diff_margin(correct: Answers, wrong: Answers, position: int = -1) -> LogitDiffMargin:
    """Claim "the logit of ``correct`` exceeds that of ``wrong``" as a per-prompt margin."""
    return LogitDiffMargin(correct, wrong, position)


class PatchingMargin:
    """Margin of "patching ``components`` from each prompt into its corrupted version restores
    at least ``min_recovery`` of the logit difference", per prompt and in logit units:
    ``(LD_patched - LD_corrupted) - min_recovery * (LD_clean - LD_corrupted)``, positive exactly
    when the patch restores that share of a positive clean-corrupted effect. A prompt whose
    corruption costs nothing (``LD_clean <= LD_corrupted``) leaves nothing to restore and is a
    counterexample to the claim's premise, so the search reports it too.

    ``corrupt(tokens) -> tokens`` makes the corrupted prompt of each prompt (same shape);
    ``correct`` / ``wrong`` are answers as for :class:`LogitDiffMargin`."""

    def __init__(self, components: Any, corrupt: Callable[[Tensor], Tensor], correct: Answers,
                 wrong: Answers, min_recovery: float = 0.8, position: int = -1) -> None:
        if not callable(corrupt):
            raise MiAssertInputError(f"corrupt must be a callable tokens -> corrupted tokens; "
                                     f"got {type(corrupt).__name__}")
        self.components, self.corrupt = components, corrupt
        self.correct, self.wrong, self.position = correct, wrong, position
        self.min_recovery = _check_fraction("min_recovery", min_recovery)
        self.__name__ = (f"patching_margin({_describe(components)}, "
                         f"min_recovery={self.min_recovery:g})")

    def __call__(self, handle: ModelHandle, tokens: Tensor) -> Tensor:
        comps = parse_components(handle, self.components)
        corrupted = self.corrupt(tokens)
        if not isinstance(corrupted, Tensor) or corrupted.shape != tokens.shape:
            got = tuple(corrupted.shape) if isinstance(corrupted, Tensor) else type(corrupted).__name__
            raise MiAssertInputError(
                f"corrupt returned {got} for prompts of shape {tuple(tokens.shape)}; patching "
                "needs a corrupted prompt of the same shape for every prompt")
        correct = self.correct(tokens) if callable(self.correct) else self.correct
        wrong = self.wrong(tokens) if callable(self.wrong) else self.wrong
        metric = logit_diff(_per_prompt(correct, tokens), _per_prompt(wrong, tokens),
                            self.position).bind(handle)
        clean_logits, cache = handle.run_with_cache(tokens, hooks_of(comps))
        patched, _ = patched_logits(handle, corrupted, comps, cache)
        ld_clean = evaluate_metric(metric, clean_logits).cpu()
        ld_corrupted = evaluate_metric(metric, handle.forward(corrupted)).cpu()
        ld_patched = evaluate_metric(metric, patched).cpu()
        return (ld_patched - ld_corrupted) - self.min_recovery * (ld_clean - ld_corrupted)

    def __repr__(self) -> str:
        return self.__name__


def patching_margin(components: Any, corrupt: Callable[[Tensor], Tensor], correct: Answers,
                    wrong: Answers, min_recovery: float = 0.8, position: int = -1) -> PatchingMargin:
    """Claim "patching ``components`` clean → corrupted restores at least ``min_recovery`` of the
    logit difference on this prompt" as a per-prompt margin (see :class:`PatchingMargin`)."""
    return PatchingMargin(components, corrupt, correct, wrong, min_recovery, position)


def _per_prompt(ids: Any, tokens: Tensor) -> Any:
    if isinstance(ids, int) and not isinstance(ids, bool):
        return torch.full((tokens.shape[0],), ids, dtype=torch.long)
    return ids


def _describe(answer: Answers) -> str:
    return getattr(answer, "__name__", None) or repr(answer)
