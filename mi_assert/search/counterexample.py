"""Search prompts for a counterexample to a per-prompt claim, with Hypothesis.

Hypothesis draws token batches from a strategy, each batch's least margin is passed to
``hypothesis.target(-margin)`` so generation moves toward prompts where the claim is closest to
failing, and a failing batch is shrunk to a minimal one. A failing example is saved in the
example database (when one is given) and replayed first on the next run.

A pass means only that no counterexample turned up in the examples searched; it proves nothing
about prompts the search did not draw.
"""

from __future__ import annotations

import functools
import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from hypothesis import HealthCheck, given, settings, target
from hypothesis.database import DirectoryBasedExampleDatabase, ExampleDatabase
from hypothesis.strategies import SearchStrategy
from torch import Tensor

from mi_assert.backends import ModelHandle
from mi_assert.errors import MiAssertInputError
from mi_assert.loading import resolve_model
from mi_assert.record import record
from mi_assert.report.progress import Progress
from mi_assert.search.prompt_claims import PromptClaim
from mi_assert.stats.evidence import Evidence


@dataclass(frozen=True)
class Counterexample:
    """The prompt the search ended on (after shrinking), and the batch it came in."""

    tokens: Tensor  # [1, pos]: the worst prompt of the batch
    margin: float
    batch: Tensor  # [batch, pos]: the shrunk batch as drawn
    text: str | None = None
    #: 1-based count of examples run when the first failure was seen (replays included)
    found_at: int = 0


@dataclass(frozen=True)
class SearchResult:
    """What a counterexample search did: ``passed`` is "no counterexample in ``n_examples``
    examples", never a proof."""

    claim: str
    model: str
    passed: bool
    n_examples: int
    max_examples: int
    least_margin: float
    counterexample: Counterexample | None = None
    settings: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> str:
        searched = (f"searched: {self.n_examples} example(s) of {self.settings['strategy']}, "
                    f"max_examples={self.max_examples}, seed={self.settings['seed']}")
        if self.counterexample is None:
            return (f"{self.claim} on {self.model}: no counterexample in {self.n_examples} "
                    f"examples ({searched}); least margin seen {self.least_margin:.4g}")
        ce = self.counterexample
        text = f"\n  text: {ce.text!r}" if ce.text is not None else ""
        return (f"{self.claim} on {self.model}: counterexample found at example {ce.found_at} "
                f"({searched}); shrunk to a batch of shape {tuple(ce.batch.shape)}\n"
                f"  tokens: {ce.tokens[0].tolist()}{text}\n"
                f"  prompt: {describe_prompt(ce.tokens[0].tolist())}\n"
                f"  margin: {ce.margin:.4g} (<= 0: fails)")

    def to_evidence(self, model: Mapping[str, Any] | None = None,
                    figures: Mapping[str, Any] | None = None) -> Evidence:
        """The search as report evidence: its least margin against 0 over the examples searched
        (a search, not a sample: no interval, no confidence level; a failure states the
        counterexample as its reason)."""
        ce = self.counterexample
        details: dict[str, Any] = {"searched": self.summary().splitlines()[0],
                                   "max_examples": self.max_examples}
        reason = ""
        if ce is not None:
            reason = (f"counterexample at example {ce.found_at}: margin {ce.margin:.4g} <= 0 "
                      f"({describe_prompt(ce.tokens[0].tolist())})")
            details["counterexample"] = {
                "tokens": ce.tokens[0].tolist(), "text": ce.text, "margin": ce.margin,
                "found_at": ce.found_at, "structure": describe_prompt(ce.tokens[0].tolist()),
                "batch_shape": list(ce.batch.shape)}
        least = self.least_margin if math.isfinite(self.least_margin) else 0.0
        return Evidence(
            claim=f"{self.claim} holds for every prompt searched", metric="least margin",
            estimate=least, low=least, high=least, bound=least, n=self.n_examples,
            threshold=0.0, alpha=float("nan"), alternative="greater",
            passed=ce is None and least > 0, reason=reason, unit="examples searched",
            settings={"family": "search", **self.settings}, model=dict(model or {}),
            details=details, figures=dict(figures or {}))

    def __str__(self) -> str:
        return self.summary()


class CounterexampleFound(AssertionError):
    """The claim fails on a prompt the search found (shrunk); ``.tokens``, ``.margin`` and
    ``.text`` (with a tokenizer) describe it, ``.result`` is the whole search."""

    def __init__(self, result: SearchResult) -> None:
        assert result.counterexample is not None
        super().__init__("claim does not hold for all prompts\n" + result.summary())
        self.result = result
        self.tokens = result.counterexample.tokens
        self.margin = result.counterexample.margin
        self.text = result.counterexample.text


def repeat_structure(tokens: Sequence[int]) -> tuple[int, int] | None:
    """``(repeat length, first position of the copy)`` when the prompt ends in a block of
    tokens followed by an exact copy of it (the longest such block), else None."""
    t = list(tokens)
    for length in range(len(t) // 2, 0, -1):
        if t[-length:] == t[-2 * length:-length]:
            return length, len(t) - length
    return None


def describe_prompt(tokens: Sequence[int]) -> str:
    """What a reader needs to see in a counterexample's prompt: its length and, for a repeated
    block, the repeat length (which is what induction claims depend on)."""
    found = repeat_structure(tokens)
    text = f"length {len(tokens)}"
    if found is not None:
        length, start = found
        text += (f"; a block of {length} token(s) then its copy (repeat length {length}, "
                 f"copy from position {start})")
    return text


class _Failed(Exception):
    """Marks a failing example for Hypothesis (it shrinks any exception the test raises)."""


def _as_batch(drawn: Any) -> Tensor:
    if not isinstance(drawn, Tensor) or drawn.is_floating_point() or drawn.ndim not in (1, 2) \
            or drawn.numel() == 0:
        what = (f"a {'float ' if drawn.is_floating_point() else ''}Tensor of shape "
                f"{tuple(drawn.shape)}" if isinstance(drawn, Tensor) else type(drawn).__name__)
        raise MiAssertInputError(
            f"the prompts strategy drew {what}; it must draw integer token ids, a batch "
            "[batch, pos] or one prompt [pos] (e.g. mi_assert.strategies.repeated_token_prompts)")
    return drawn[None] if drawn.ndim == 1 else drawn


def _margins(claim: PromptClaim, handle: ModelHandle, tokens: Tensor) -> Tensor:
    out = claim(handle, tokens)
    name = getattr(claim, "__name__", type(claim).__name__)
    if not isinstance(out, Tensor) or out.ndim != 1 or out.shape[0] != tokens.shape[0]:
        got = f"shape {tuple(out.shape)}" if isinstance(out, Tensor) else type(out).__name__
        raise MiAssertInputError(
            f"claim {name} returned {got} for a batch of {tokens.shape[0]} prompt(s); a claim "
            f"must return a Tensor [{tokens.shape[0]}], one margin per prompt (positive = holds)")
    out = out.detach().float().cpu()
    if not bool(torch.isfinite(out).all()):
        raise MiAssertInputError(f"claim {name} returned NaN/inf margins for {tokens.tolist()}")
    return out


def _database(database: Any) -> ExampleDatabase | None:
    if database is None or isinstance(database, ExampleDatabase):
        return database
    if isinstance(database, (str, Path)):
        return DirectoryBasedExampleDatabase(str(database))
    raise MiAssertInputError(f"database must be None, a directory path or a hypothesis "
                             f"ExampleDatabase; got {type(database).__name__}")


def _decode(handle: ModelHandle, tokens: Tensor) -> str | None:
    tok = handle.tokenizer
    if tok is None:
        return None
    try:
        return str(tok.decode(tokens.tolist()))
    except Exception:  # a tokenizer that cannot decode must not hide the counterexample
        return None


def check_holds_for_all(model: Any, claim: PromptClaim, prompts: SearchStrategy[Any], *,
                        max_examples: int = 200, seed: int = 0,
                        database: Any = None) -> SearchResult:
    """Search ``prompts`` for a prompt where ``claim(handle, tokens) -> Tensor[batch]`` (one
    margin per prompt, positive = holds) is <= 0; return a :class:`SearchResult` without raising.

    ``max_examples`` bounds the generated examples (shrinking a failure adds more); ``seed``
    fixes Hypothesis's random choices, so a run repeats exactly; ``database`` (a directory or a
    Hypothesis ``ExampleDatabase``) keeps failing examples, which the next run replays first.
    """
    handle = resolve_model(model)
    if isinstance(max_examples, bool) or not isinstance(max_examples, int) or max_examples < 1:
        raise MiAssertInputError(f"max_examples must be an int >= 1; got {max_examples!r}")
    if not isinstance(prompts, SearchStrategy):
        raise MiAssertInputError(f"prompts must be a hypothesis strategy of token batches; got "
                                 f"{type(prompts).__name__} (fixed prompts: call the claim directly)")
    if not callable(claim):
        raise MiAssertInputError(f"claim must be a callable (handle, tokens) -> Tensor[batch]; "
                                 f"got {type(claim).__name__}")
    name = getattr(claim, "__name__", type(claim).__name__)
    calls = 0
    least = float("inf")
    found_at = 0
    last_failure: tuple[Tensor, Tensor] | None = None
    input_error: list[MiAssertInputError] = []
    bar = Progress(max_examples, f"search {name} on {handle.spec}")

    @settings(max_examples=max_examples, database=_database(database), deadline=None,
              suppress_health_check=list(HealthCheck), report_multiple_bugs=False,
              print_blob=False)
    @given(prompts)
    def probe(drawn: Any) -> None:
        nonlocal calls, least, found_at, last_failure
        if input_error:  # the same bad input fails every example: stop shrinking it quickly
            raise input_error[0]
        calls += 1
        try:
            tokens = _as_batch(drawn)
            margins = _margins(claim, handle, tokens)
        except MiAssertInputError as exc:
            input_error.append(exc)
            raise
        worst = float(margins.min())
        least = min(least, worst)
        bar.update(note=f"least margin {least:.4g}")
        target(-worst, label="negated least margin")
        if worst <= 0:
            found_at = found_at or calls
            last_failure = (tokens.cpu(), margins)
            raise _Failed

    # the key ties saved failures to this model, claim and strategy, not to this function
    key = f"mi_assert.search|{handle.spec}|{name}|{prompts!r}".encode()
    probe._hypothesis_internal_database_key = hashlib.sha256(key).digest()  # type: ignore[attr-defined]
    # what hypothesis.seed() sets, without the database=None that seed() also imposes
    probe._hypothesis_internal_use_seed = seed  # type: ignore[attr-defined]
    strategy = repr(prompts)
    common = {"strategy": strategy, "seed": seed, "database": None if database is None else str(database)}
    try:
        probe()
    except _Failed:
        bar.close("counterexample found")
        assert last_failure is not None
        batch, margins = last_failure  # Hypothesis replays the shrunk example last
        i = int(margins.argmin())
        ce = Counterexample(tokens=batch[i:i + 1], margin=float(margins[i]), batch=batch,
                            text=_decode(handle, batch[i]), found_at=found_at)
        return SearchResult(name, handle.spec, False, calls, max_examples, least, ce, common)
    bar.close(f"no counterexample in {calls} examples")
    return SearchResult(name, handle.spec, True, calls, max_examples, least, None, common)


def assert_holds_for_all(model: Any, claim: PromptClaim, prompts: SearchStrategy[Any], *,
                         max_examples: int = 200, seed: int = 0,
                         database: Any = None) -> SearchResult:
    """Raise :class:`CounterexampleFound` (an AssertionError showing the shrunk prompt and its
    margin) when the search of :func:`check_holds_for_all` finds one; else return its result."""
    __tracebackhide__ = True
    handle = resolve_model(model)
    result = check_holds_for_all(handle, claim, prompts, max_examples=max_examples, seed=seed,
                                 database=database)
    figures = {}
    picture = getattr(claim, "figure", None)
    if result.counterexample is not None and callable(picture):
        figures["counterexample"] = picture(handle, result.counterexample.tokens)
    record(result.to_evidence(handle.describe(), figures))
    if not result.passed:
        raise CounterexampleFound(result)
    return result


# the assert_* of a check_*, as every family's (its failure is a counterexample, not Evidence)
functools.update_wrapper(assert_holds_for_all, check_holds_for_all, assigned=(), updated=())
