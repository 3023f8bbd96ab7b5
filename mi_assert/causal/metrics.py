"""Metrics for causal claims: one value per prompt, read at one position.

Every metric here follows the shared metric protocol (``docs/causal.md``):

* ``metric(logits)`` with logits ``[batch, pos, d_vocab]`` returns a float Tensor ``[batch]``;
* ``metric.position`` is the single sequence position it reads (an int, negative allowed), or
  None when prompts read different positions (a per-prompt position tensor);
* ``metric.at_position(logits_at_pos)`` computes the same values from ``[batch, d_vocab]``
  logits already taken at that position, so fast paths may unembed one position only.

Metric objects hold per-prompt answer ids (shape ``[batch]``); when a sweep stacks V patched
variants of a batch of B prompts it calls the metric on each ``[B, ...]`` slice. Answers may
also be strings (``logit_diff(" Mary", " John")``, or one string per prompt): each must be
exactly one token of the model's tokenizer, as given (GPT-2-style tokenizers mark a leading
space). Strings become ids when the metric meets its model: claims and sweeps bind it
(:func:`bind_metric`), or call ``metric.bind(model)`` yourself.
Sweeps report TransformerLens units: the mean over prompts of the metric.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import Tensor

from mi_assert.errors import MiAssertInputError
from mi_assert.shapes import MetricFn
from mi_assert.tokenization import not_single_tokens_message, single_token_problems

METRIC_NAMES: tuple[str, ...] = ("logit_diff", "logprob", "prob")


#: answers as given: token ids (``[batch]`` or one id for all), one string for all prompts, or
#: one string per prompt (a tuple) still to be tokenized
Answers = Tensor | str | tuple[str, ...]


class Metric:
    """Base class: subclasses implement :meth:`at_position`.

    ``answer_fields`` names the attributes holding :data:`Answers`; :meth:`bind` turns the
    strings among them into token ids.
    """

    name: str = "metric"
    answer_fields: tuple[str, ...] = ()

    def __init__(self, position: int | Tensor = -1) -> None:
        if isinstance(position, Tensor):
            if position.ndim != 1 or position.is_floating_point():
                raise MiAssertInputError(
                    f"{self.name}: position must be an int or an integer tensor [batch]; got "
                    f"shape {tuple(position.shape)} dtype {position.dtype}"
                )
            self.positions: Tensor | None = position.long()
            self.position: int | None = None
        elif isinstance(position, int) and not isinstance(position, bool):
            self.positions = None
            self.position = position
        else:
            raise MiAssertInputError(f"{self.name}: position must be an int or a LongTensor [batch]; got {position!r}")

    def at_position(self, logits_at_pos: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def answer_strings(self) -> dict[str, str | tuple[str, ...]]:
        """The answer fields still holding strings (empty once bound, or when given ids)."""
        return {f: v for f in self.answer_fields if isinstance(v := getattr(self, f), (str, tuple))}

    def bind(self, model: Any) -> Metric:
        """This metric with its answer strings turned into ``model``'s token ids (``self`` when
        it holds no strings). ``model``: a handle or any model with a ``tokenizer``."""
        pending = self.answer_strings()
        if not pending:
            return self
        tokenizer = getattr(model, "tokenizer", None)
        if tokenizer is None:
            spec = getattr(model, "spec", type(model).__name__)
            raise MiAssertInputError(
                f"{self.name}: answers {_quoted(pending)} are strings, but model {spec!r} has no "
                "tokenizer to turn them into token ids; pass token ids (an int, a list of ints or "
                "a LongTensor [batch])"
            )
        bound = copy.copy(self)
        problems: list[str] = []
        for field, strings in pending.items():
            words = (strings,) if isinstance(strings, str) else strings
            ids, bad = single_token_problems(tokenizer, words)
            problems += [f"{field} {p}" for p in bad]
            if not bad:
                setattr(bound, field, torch.tensor(ids[0] if isinstance(strings, str) else ids))
        if problems:  # every field's bad answers in one message
            raise MiAssertInputError(not_single_tokens_message(self.name, problems))
        return bound

    def answer_ids(self, field: str) -> Tensor:
        """The token ids in answer field ``field``; strings not yet bound are refused."""
        value = getattr(self, field)
        if not isinstance(value, Tensor):
            raise MiAssertInputError(
                f"{self.name}: {field} holds answer strings {_quoted({field: value})}, which become "
                "token ids only with a model's tokenizer. Use the metric in a claim or sweep with "
                "its model (the metric is bound there), call metric.bind(model) first, or pass "
                "token ids"
            )
        return value

    def select(self, logits: Tensor) -> Tensor:
        """Logits ``[batch, pos, d_vocab]`` → ``[batch, d_vocab]`` at this metric's position."""
        if logits.ndim != 3:
            raise MiAssertInputError(
                f"{self.name}: expected logits [batch, pos, d_vocab]; got shape {tuple(logits.shape)}"
            )
        n_pos = logits.shape[1]
        if self.positions is None:
            assert self.position is not None
            if not -n_pos <= self.position < n_pos:
                raise MiAssertInputError(
                    f"{self.name}: position {self.position} is out of range for prompts of "
                    f"{n_pos} tokens (allowed {-n_pos}..{n_pos - 1})"
                )
            return logits[:, self.position]
        pos = self.positions.to(logits.device)
        if pos.shape[0] != logits.shape[0]:
            raise MiAssertInputError(
                f"{self.name}: {pos.shape[0]} per-prompt positions for a batch of {logits.shape[0]}"
            )
        if int(pos.max()) >= n_pos or int(pos.min()) < -n_pos:
            raise MiAssertInputError(f"{self.name}: positions out of range for {n_pos} tokens")
        return logits[torch.arange(logits.shape[0], device=logits.device), pos]

    def __call__(self, logits: Tensor) -> Tensor:
        return self.at_position(self.select(logits))

    def describe(self) -> str:
        where = self.position if self.positions is None else "per-prompt"
        return f"{self.name}@{where}"

    def __repr__(self) -> str:
        return f"<{self.describe()}>"


def _quoted(pending: dict[str, Any]) -> str:
    words = [w for v in pending.values() for w in ((v,) if isinstance(v, str) else v)]
    return ", ".join(repr(w) for w in words)


_IDS_ALLOWED = ("an int, a list of ints, an integer tensor [batch], or answer strings (one for "
                "all prompts or one per prompt)")


def _answers(name: str, value: Any) -> Answers:
    """Answers as given: strings stay strings (until :meth:`Metric.bind`), ids become a tensor."""
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple)) and any(isinstance(v, str) for v in value):
        if not all(isinstance(v, str) for v in value):
            raise MiAssertInputError(f"{name} mixes strings and ids ({value!r}); give {_IDS_ALLOWED}")
        return tuple(value)
    return _ids(name, value)


def _ids(name: str, ids: Any) -> Tensor:
    try:
        t = torch.as_tensor(ids)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise MiAssertInputError(f"{name} must be {_IDS_ALLOWED}; got {type(ids).__name__} {ids!r}") from exc
    if t.ndim == 1 and t.numel() == 0:
        raise MiAssertInputError(f"{name} is empty; give {_IDS_ALLOWED}")
    if t.is_floating_point() or t.is_complex() or t.dtype == torch.bool or t.ndim > 1:
        raise MiAssertInputError(
            f"{name} must be token ids: {_IDS_ALLOWED}; got shape {tuple(t.shape)} dtype {t.dtype}"
        )
    return t.long()


def _gather(logits_at_pos: Tensor, ids: Tensor, name: str) -> Tensor:
    batch, d_vocab = logits_at_pos.shape
    ids = ids.to(logits_at_pos.device)
    if ids.ndim == 1 and ids.shape[0] != batch:
        raise MiAssertInputError(
            f"{name} has {ids.shape[0]} ids but the batch has {batch} prompts; give one answer "
            "id per prompt (or a single int for all)"
        )
    if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= d_vocab):
        raise MiAssertInputError(f"{name}: token ids must lie in 0..{d_vocab - 1}")
    ids = ids.expand(batch) if ids.ndim == 0 else ids
    return logits_at_pos.gather(1, ids[:, None])[:, 0]


class LogitDiff(Metric):
    """``logit[correct] - logit[wrong]`` at ``position``."""

    name = "logit_diff"
    answer_fields = ("correct_ids", "wrong_ids")

    def __init__(self, correct_ids: Any, wrong_ids: Any, position: int | Tensor = -1) -> None:
        super().__init__(position)
        self.correct_ids: Answers = _answers("correct_ids", correct_ids)
        self.wrong_ids: Answers = _answers("wrong_ids", wrong_ids)

    def at_position(self, logits_at_pos: Tensor) -> Tensor:
        lp = logits_at_pos.float()
        correct, wrong = self.answer_ids("correct_ids"), self.answer_ids("wrong_ids")
        return _gather(lp, correct, "correct_ids") - _gather(lp, wrong, "wrong_ids")


class LogProb(Metric):
    """``log softmax(logits)[token]`` at ``position``."""

    name = "logprob"
    answer_fields = ("token_ids",)

    def __init__(self, token_ids: Any, position: int | Tensor = -1) -> None:
        super().__init__(position)
        self.token_ids: Answers = _answers("token_ids", token_ids)

    def at_position(self, logits_at_pos: Tensor) -> Tensor:
        ids = self.answer_ids("token_ids")
        return _gather(torch.log_softmax(logits_at_pos.float(), dim=-1), ids, "token_ids")


class Prob(LogProb):
    """``softmax(logits)[token]`` at ``position`` (prefer logit_diff/logprob: saturates)."""

    name = "prob"

    def at_position(self, logits_at_pos: Tensor) -> Tensor:
        return super().at_position(logits_at_pos).exp()


class KLToClean(Metric):
    """``KL(p_clean || p)`` at ``position`` per prompt (0 on the clean run; lower is cleaner)."""

    name = "kl_to_clean"

    def __init__(self, clean_logits: Tensor, position: int | Tensor = -1) -> None:
        super().__init__(position)
        if not isinstance(clean_logits, Tensor) or clean_logits.ndim not in (2, 3):
            raise MiAssertInputError(
                "kl_to_clean needs the clean run's logits [batch, pos, d_vocab] (or [batch, d_vocab] "
                "already at the position)"
            )
        at = self.select(clean_logits) if clean_logits.ndim == 3 else clean_logits
        self.clean_logprobs = torch.log_softmax(at.detach().float(), dim=-1)

    def at_position(self, logits_at_pos: Tensor) -> Tensor:
        ref = self.clean_logprobs.to(logits_at_pos.device)
        if ref.shape != logits_at_pos.shape:
            raise MiAssertInputError(
                f"kl_to_clean: clean logits have shape {tuple(ref.shape)} at the position but the "
                f"patched run gives {tuple(logits_at_pos.shape)}; use the same prompts"
            )
        logp = torch.log_softmax(logits_at_pos.float(), dim=-1)
        return (ref.exp() * (ref - logp)).sum(-1)


def logit_diff(correct_ids: Any, wrong_ids: Any, position: int | Tensor = -1) -> LogitDiff:
    """Metric: logit of the correct answer minus the wrong one, one value per prompt.

    Answers: token ids, or single-token strings (``logit_diff(" Mary", " John")``) bound to the
    model's tokenizer when the metric is used with a model."""
    return LogitDiff(correct_ids, wrong_ids, position)


def logprob(token_ids: Any, position: int | Tensor = -1) -> LogProb:
    """Metric: log-probability of ``token_ids`` at ``position``, one value per prompt."""
    return LogProb(token_ids, position)


def prob(token_ids: Any, position: int | Tensor = -1) -> Prob:
    """Metric: probability of ``token_ids`` at ``position``, one value per prompt."""
    return Prob(token_ids, position)


def kl_to_clean(clean_logits: Tensor, position: int | Tensor = -1) -> KLToClean:
    """Metric: KL divergence from the clean run's next-token distribution, per prompt."""
    return KLToClean(clean_logits, position)


def metric_name(metric: Any) -> str:
    if isinstance(metric, Metric):
        return metric.describe()
    return getattr(metric, "__name__", type(metric).__name__)


class CheckedMetric:
    """A user's metric callable whose every result is checked like :func:`evaluate_metric`
    (a float Tensor with one finite value per prompt), on every path that calls it: the fast
    sweep kernels call a metric directly, so a check at the call sites alone would miss them."""

    def __init__(self, fn: MetricFn) -> None:
        self.fn = fn
        self.__name__ = metric_name(fn)

    def __call__(self, logits: Tensor) -> Tensor:
        return evaluate_metric(self.fn, logits)

    def __repr__(self) -> str:
        return f"<checked metric {self.__name__}>"


def bind_metric(metric: Any, model: Any) -> Any:
    """``metric`` ready for ``model``: a :class:`Metric`'s answer strings become the model's
    token ids; any other callable is wrapped in a :class:`CheckedMetric`. Without a model the
    metric is returned unchanged."""
    if model is None or isinstance(metric, CheckedMetric):
        return metric
    if isinstance(metric, Metric):
        return metric.bind(model)
    return CheckedMetric(metric) if callable(metric) else metric


def metric_for_prompts(metric: Any, prompts: Any, position: int = -1, model: Any = None) -> MetricFn:
    """Resolve ``metric``: a callable passes through (bound to ``model`` when given, see
    :func:`bind_metric`); a name in :data:`METRIC_NAMES` is built from the prompt set's
    ``correct``/``wrong`` ids (``logprob``/``prob`` read ``correct``)."""
    if callable(metric):
        return bind_metric(metric, model)
    if not isinstance(metric, str) or metric not in METRIC_NAMES:
        raise MiAssertInputError(
            f"metric {metric!r} not understood: pass a callable logits -> Tensor[batch] (e.g. "
            f"mi_assert.logit_diff(correct, wrong)) or one of {', '.join(METRIC_NAMES)} with a "
            "PromptSet that carries answer ids"
        )
    correct = getattr(prompts, "correct", None)
    wrong = getattr(prompts, "wrong", None)
    if correct is None or (metric == "logit_diff" and wrong is None):
        raise MiAssertInputError(
            f"metric={metric!r} needs answer ids: the prompts have no "
            f"{'correct' if correct is None else 'wrong'} ids; pass a metric object instead"
        )
    if metric == "logit_diff":
        return LogitDiff(correct, wrong, position)
    return LogProb(correct, position) if metric == "logprob" else Prob(correct, position)


def evaluate_metric(metric: MetricFn, logits: Tensor, batch: int | None = None) -> Tensor:
    """Call ``metric`` and check it returned one finite value per prompt (float [batch])."""
    n = logits.shape[0] if batch is None else batch
    out = metric(logits)
    if not isinstance(out, Tensor):
        raise MiAssertInputError(
            f"metric {metric_name(metric)} returned {type(out).__name__}; a metric must return a "
            f"Tensor [batch] with one value per prompt (batch={n})"
        )
    if out.ndim != 1 or out.shape[0] != n:
        hint = (" A scalar usually means the metric averages over the batch (TransformerLens "
                "style); return per-prompt values instead and mi-assert averages them."
                if out.ndim == 0 else "")
        raise MiAssertInputError(
            f"metric {metric_name(metric)} returned shape {tuple(out.shape)}; expected ({n},): one "
            f"value per prompt.{hint}"
        )
    out = out.float()
    if not bool(torch.isfinite(out).all()):
        raise MiAssertInputError(f"metric {metric_name(metric)} returned NaN/inf values")
    return out
