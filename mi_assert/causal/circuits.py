"""Circuit claims in the sense of Wang et al. (2022): faithfulness, completeness, minimality.

Notation: ``M`` is the model's node set, ``C`` the claimed circuit, ``F(S)`` the mean metric
when every node **outside** ``S`` is knocked out (ablated), so ``F(M)`` is the full model.

* Node set: every attention head (knocked out at ``attn.hook_z``, per head). MLP layers join
  the node set when the circuit names any (``"mlp3"``) or ``nodes="heads+mlps"``; otherwise
  MLPs are always kept (as in Wang et al., who study heads only).
* Knock-out (``ablation``): ``"mean"`` (default) replaces a node's activation with its mean
  over ``reference`` prompts per position (default: the prompt batch; ``reference="corrupted"``
  uses the PromptSet's corrupted prompts, e.g. IOI's ABC distribution as in Wang et al.),
  ``"zero"``, ``"resample"`` (another prompt's activation) — see
  :func:`mi_assert.causal.interventions.ablation_sources`. Ablation type and metric are
  recorded in ``Evidence.settings`` (Miller et al. 2024 show the choice changes the verdict).

Claims (every statistic is a ratio of means over prompts, resampled by the engine with
identical prompts merged; every seed must pass and the worst row is the headline):

* **faithfulness** = ``F(C) / F(M)``; passes when its lower bound > ``min_faithfulness``.
* **completeness**: for sampled subsets ``K ⊆ C`` (seeded; always ∅ and C itself),
  ``|F(C\\K) - F(M\\K)| / F(M)`` must be < ``max_gap`` for every K. The absolute value is two
  one-sided member claims, ``(F(C\\K) - F(M\\K))/F(M) < max_gap`` and
  ``(F(M\\K) - F(C\\K))/F(M) < max_gap``, each with one row per seed and K; the claim is
  :func:`~mi_assert.stats.composite.all_of` them (intersection-union).
* **minimality**: for each ``v ∈ C`` some ``K ⊆ C\\{v}`` gives
  ``|F(C\\(K∪{v})) - F(C\\K)| / F(M)`` ≥ ``min_effect`` (default 0.01, Wang et al.'s 1% bar
  relative to the full-model metric). K is chosen on half the prompts (the one with the largest
  point estimate among the sampled subsets) and tested on the other half, so choosing the best
  K does not bias the bound; the halves split distinct prompts (copies of a prompt stay in one
  half), and the test half needs ``min_prompts`` of them. One member claim per ``v``, all of
  them must pass.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterator, Mapping, Sequence
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor

from mi_assert.backends.base import ModelHandle
from mi_assert.causal.components import Component, all_heads, all_mlps, parse_components
from mi_assert.causal.draws import Draw, check_enough_prompts, prompt_draws, prompt_ids
from mi_assert.causal.interventions import ABLATION_METHODS, ablation_sources, edits_for
from mi_assert.causal.metrics import evaluate_metric, metric_name
from mi_assert.causal.recovery import RatioRow, check_gap, ratio_claim
from mi_assert.errors import MiAssertInputError
from mi_assert.loading import resolve_model
from mi_assert.stats import Evidence, RowKey, all_of
from mi_assert.stats.claims import DEFAULT_MIN_UNITS, check_threshold
from mi_assert.stats.options import ClaimOptions, check_count, claim_options
from mi_assert.verdict import asserting

NODE_SETS: tuple[str, ...] = ("auto", "heads", "heads+mlps")
#: distinct prompts each seed's row needs (minimality: in its test half)
DEFAULT_MIN_PROMPTS = DEFAULT_MIN_UNITS

_MINIMALITY_HINT = ("hint: a component whose best K shows no effect is not needed in the circuit "
                    "(or its effect is below min_effect).")


class CircuitRunner:
    """Evaluates ``F(S)`` per prompt for sets of kept nodes on one prompt draw."""

    def __init__(self, handle: ModelHandle, draw: Draw, circuit: Sequence[Component],
                 nodes: str, ablation: str, reference: Tensor | None) -> None:
        if nodes not in NODE_SETS:
            raise MiAssertInputError(f"nodes={nodes!r}: allowed {', '.join(NODE_SETS)}")
        if ablation not in ABLATION_METHODS or ablation == "noise":
            raise MiAssertInputError(f"ablation={ablation!r}: allowed mean, zero, resample")
        for c in circuit:
            if not (c.is_head and c.hook.endswith("attn.hook_z")) and not c.hook.endswith("hook_mlp_out"):
                raise MiAssertInputError(
                    f"circuit component {c.label!r}: circuits are made of attention heads and MLP "
                    "layers ('mlpL'); residual-stream sites are not nodes"
                )
        with_mlps = nodes == "heads+mlps" or (nodes == "auto" and any(not c.is_head for c in circuit))
        self.nodes: list[Component] = all_heads(handle) + (all_mlps(handle) if with_mlps else [])
        self.handle = handle
        self.draw = draw
        self.tokens = draw.prompts.clean
        self.sources = ablation_sources(handle, self.tokens, self.nodes, ablation, reference,
                                        seed=draw.seed)
        self._memo: dict[frozenset[Component], np.ndarray] = {}

    def F(self, kept: Sequence[Component] | frozenset[Component]) -> np.ndarray:
        key = frozenset(kept)
        if key not in self._memo:
            knocked = [n for n in self.nodes if n not in key]
            logits, _ = self.handle.run_with_edits(self.tokens, edits_for(knocked, self.sources))
            self._memo[key] = evaluate_metric(self.draw.metric, logits).detach().cpu().double().numpy()
        return self._memo[key]

    def full(self) -> np.ndarray:
        return self.F(self.nodes)


def _setup(model: Any, prompts: Any, circuit: Any, metric: Any, options: ClaimOptions,
           prompt_kwargs: Mapping[str, Any] | None) -> tuple[ModelHandle, list[Component], list[Draw]]:
    handle = resolve_model(model)
    comps = parse_components(handle, circuit)
    draws = prompt_draws(handle, None, None, prompts, metric, options.seeds,
                         need_corrupted=False, prompt_kwargs=prompt_kwargs)
    check_enough_prompts(draws, options.min_prompts, pairs=False)
    return handle, comps, draws


def _reference(draw: Draw, reference: Any, handle: ModelHandle) -> Tensor | None:
    from mi_assert.causal.assertions import _reference_tokens

    return _reference_tokens(handle, draw, reference)


def _runners(handle: ModelHandle, draws: Sequence[Draw], comps: Sequence[Component], nodes: str,
             ablation: str, reference: Any, what: str
             ) -> Iterator[tuple[Draw, CircuitRunner, np.ndarray]]:
    """``(draw, runner, F(M))`` per draw, after checking that ``F(M)`` is not zero.

    Draws of explicit prompts share one PromptSet (the seed only varies the bootstrap), so
    unless the ablation is seeded (``resample``) they share one runner and its ``F`` memo.
    """
    shared: dict[int, CircuitRunner] = {}
    for draw in draws:
        runner = shared.get(id(draw.prompts)) if ablation != "resample" else None
        if runner is None:
            runner = CircuitRunner(handle, draw, comps, nodes, ablation,
                                   _reference(draw, reference, handle))
            shared[id(draw.prompts)] = runner
        full = runner.full()
        check_gap(full, np.zeros_like(full), what=f"full-model metric ({what} is relative to it; its")
        yield draw, runner, full


def _settings(circuit: Sequence[Component], ablation: str, reference: Any, metric: Any,
              draw: Draw, runner: CircuitRunner) -> dict[str, Any]:
    from mi_assert.causal.assertions import _reference_name

    return {"circuit": [c.label for c in circuit], "ablation": ablation,
            "reference": _reference_name(reference), "metric": metric_name(metric),
            "node_set": f"{len(runner.nodes)} nodes ("
                        + ("heads+MLPs" if len(runner.nodes) > runner.handle.n_layers * runner.handle.n_heads
                           else "heads") + ")",
            "prompts": draw.source, "n_prompts": len(draw.prompts)}


def _subsets(items: Sequence[Component], n: int, gen: torch.Generator,
             always: Sequence[frozenset[Component]] = ()) -> list[frozenset[Component]]:
    """``always`` plus up to ``n`` distinct random non-empty subsets of ``items`` (seeded)."""
    out: list[frozenset[Component]] = list(dict.fromkeys(always))
    items = list(items)
    tries = 0
    while len(out) < len(always) + n and tries < 20 * (n + 1) and items:
        tries += 1
        keep = torch.rand(len(items), generator=gen) < 0.5
        subset = frozenset(c for c, k in zip(items, keep.tolist(), strict=True) if k)
        if subset and subset not in out:
            out.append(subset)
    return out


def _label(comps: Sequence[Component]) -> str:
    return "+".join(c.label for c in comps)


def check_circuit_faithfulness(
    model: Any,
    prompts: Any,
    circuit: Any,
    metric: Any = "logit_diff",
    *,
    min_faithfulness: float = 0.8,
    ablation: Literal["mean", "zero", "resample"] = "mean",
    reference: Any = None,
    nodes: str = "auto",
    seeds: Sequence[int] | int = (0,),
    quorum: int | float | None = None,
    prompt_kwargs: Mapping[str, Any] | None = None,
    alpha: float = 0.05,
    n_resamples: int = 2000,
    min_prompts: int = DEFAULT_MIN_PROMPTS,
) -> Evidence:
    """Claim: the circuit alone (everything else knocked out) keeps at least
    ``min_faithfulness`` of the full model's metric: ``F(C)/F(M)`` (module docstring).

    ``seeds`` vary the bootstrap (and a ``resample`` ablation) with explicit prompts and draw
    fresh prompts with a generator name; ``quorum`` seeds must pass (default all); each seed
    needs ``min_prompts`` distinct prompts."""
    options = claim_options(seeds=seeds, quorum=quorum, alpha=alpha, n_resamples=n_resamples,
                            min_prompts=min_prompts)
    threshold = check_threshold(min_faithfulness, "greater", None, "min_faithfulness")
    handle, comps, draws = _setup(model, prompts, circuit, metric, options, prompt_kwargs)
    rows: dict[RowKey, RatioRow] = {}
    runner = None
    for draw, runner, full in _runners(handle, draws, comps, nodes, ablation, reference,
                                       "faithfulness"):
        rows[RowKey(draw.seed)] = (runner.F(comps), full, prompt_ids(draw.prompts, pairs=False))
    assert runner is not None
    spec = ratio_claim(
        f"circuit {_label(comps)} is faithful (F(C)/F(M) > {threshold:g})",
        f"faithfulness of {metric_name(draws[0].metric)}", rows, threshold=threshold,
        alternative="greater", options=options,
        settings=_settings(comps, ablation, reference, draws[0].metric, draws[0], runner),
        model_info=handle.describe(),
        details={"F(M) per seed": [round(float(np.mean(r[1])), 4) for r in rows.values()],
                 "F(C) per seed": [round(float(np.mean(r[0])), 4) for r in rows.values()]},
    )
    return spec.evaluate(options.alpha)


assert_circuit_faithfulness = asserting(check_circuit_faithfulness)


def _check_positive(value: Any, name: str, *, strict: bool) -> float:
    ok = (not isinstance(value, bool) and isinstance(value, (int, float, np.integer, np.floating))
          and math.isfinite(float(value)) and (float(value) > 0 if strict else float(value) >= 0))
    if not ok:
        raise MiAssertInputError(f"{name} must be a finite number {'>' if strict else '>='} 0; got {value!r}")
    return float(value)


def _klabel(K: frozenset[Component]) -> str:
    return "K={" + ",".join(sorted(c.label for c in K)) + "}"


def check_circuit_completeness(
    model: Any,
    prompts: Any,
    circuit: Any,
    metric: Any = "logit_diff",
    *,
    max_gap: float = 0.2,
    n_subsets: int = 8,
    ablation: Literal["mean", "zero", "resample"] = "mean",
    reference: Any = None,
    nodes: str = "auto",
    seeds: Sequence[int] | int = (0,),
    prompt_kwargs: Mapping[str, Any] | None = None,
    alpha: float = 0.05,
    n_resamples: int = 1000,
    min_prompts: int = DEFAULT_MIN_PROMPTS,
) -> Evidence:
    """Claim: knocking out any subset K of the circuit hurts the circuit as it hurts the model:
    ``|F(C\\K) - F(M\\K)| / F(M) < max_gap`` for ∅, C and ``n_subsets`` random K (seeded).
    Every seed and every K must pass (module docstring)."""
    options = claim_options(seeds=seeds, alpha=alpha, n_resamples=n_resamples,
                            min_prompts=min_prompts)
    gap = _check_positive(max_gap, "max_gap", strict=True)
    n_subsets = check_count(n_subsets, "n_subsets", minimum=0)
    handle, comps, draws = _setup(model, prompts, circuit, metric, options, prompt_kwargs)
    mname = metric_name(draws[0].metric)
    above: dict[RowKey, RatioRow] = {}
    below: dict[RowKey, RatioRow] = {}
    subsets_per_seed: dict[str, list[str]] = {}
    runner = None
    for draw, runner, full in _runners(handle, draws, comps, nodes, ablation, reference,
                                       "completeness"):
        gen = torch.Generator().manual_seed(int(draw.seed))
        units = prompt_ids(draw.prompts, pairs=False)
        subsets = _subsets(comps, n_subsets, gen, always=(frozenset(), frozenset(comps)))
        subsets_per_seed[f"seed {draw.seed}"] = [_klabel(K) for K in subsets]
        for K in subsets:
            diff = runner.F([c for c in comps if c not in K]) - runner.F(
                [n for n in runner.nodes if n not in K])
            key = RowKey(draw.seed, None, _klabel(K))
            above[key] = (diff, full, units)
            below[key] = (-diff, full, units)
    assert runner is not None
    members = [
        ratio_claim(f"F(C\\K) - F(M\\K) < {gap:g} F(M) for every K",
                    f"(F(C\\K) - F(M\\K))/F(M) of {mname}", above, threshold=gap,
                    alternative="less", options=options, quorum=False),
        ratio_claim(f"F(M\\K) - F(C\\K) < {gap:g} F(M) for every K",
                    f"(F(M\\K) - F(C\\K))/F(M) of {mname}", below, threshold=gap,
                    alternative="less", options=options, quorum=False),
    ]
    return all_of(
        members,
        claim=f"circuit {_label(comps)} is complete (every K: |F(C\\K) - F(M\\K)| < {gap:g} F(M))",
        alpha=options.alpha,
        settings={**_settings(comps, ablation, reference, draws[0].metric, draws[0], runner),
                  "n_subsets": n_subsets,
                  "statistic": "|F(C\\K) - F(M\\K)| / F(M) as two one-sided member claims"},
        model_info=handle.describe(), details={"subsets": subsets_per_seed},
    )


assert_circuit_completeness = asserting(check_circuit_completeness)


def _halves(units: Sequence[Hashable]) -> tuple[np.ndarray, np.ndarray, int]:
    """Prompt indices of the select and test halves (distinct prompts alternate between them,
    copies of a prompt stay together) and the number of distinct prompts in the test half."""
    first: dict[Hashable, int] = {}
    index = np.array([first.setdefault(u, len(first)) for u in units])
    return np.flatnonzero(index % 2 == 0), np.flatnonzero(index % 2 == 1), len(first) // 2


def check_circuit_minimality(
    model: Any,
    prompts: Any,
    circuit: Any,
    metric: Any = "logit_diff",
    *,
    min_effect: float = 0.01,
    n_subsets: int = 6,
    ablation: Literal["mean", "zero", "resample"] = "mean",
    reference: Any = None,
    nodes: str = "auto",
    seeds: Sequence[int] | int = (0,),
    prompt_kwargs: Mapping[str, Any] | None = None,
    alpha: float = 0.05,
    n_resamples: int = 1000,
    min_prompts: int = DEFAULT_MIN_PROMPTS,
) -> Evidence:
    """Claim: every circuit component matters: for each v some K ⊆ C\\{v} gives
    ``|F(C\\(K∪{v})) - F(C\\K)| / F(M) >= min_effect`` (module docstring for the K search).
    The test half of the prompts needs ``min_prompts`` distinct prompts, so give twice that."""
    options = claim_options(seeds=seeds, alpha=alpha, n_resamples=n_resamples,
                            min_prompts=min_prompts)
    effect = _check_positive(min_effect, "min_effect", strict=False)
    n_subsets = check_count(n_subsets, "n_subsets", minimum=0)
    handle = resolve_model(model)
    comps = parse_components(handle, circuit)
    draws = prompt_draws(handle, None, None, prompts, metric, options.seeds,
                         need_corrupted=False, prompt_kwargs=prompt_kwargs)
    for draw in draws:
        n_test = _halves(prompt_ids(draw.prompts, pairs=False))[2]
        if n_test < options.min_prompts:
            raise MiAssertInputError(
                f"seed {draw.seed}: minimality chooses K on half the prompts and tests it on the "
                f"other half; the test half has {n_test} distinct prompts (of "
                f"{len(draw.prompts)} given) but needs at least min_prompts="
                f"{options.min_prompts}: give at least {2 * options.min_prompts} distinct "
                "prompts (or lower min_prompts)")
    mname = metric_name(draws[0].metric)
    rows: dict[Component, dict[RowKey, RatioRow]] = {v: {} for v in comps}
    chosen: dict[str, str] = {}
    runner = None
    for draw, runner, full in _runners(handle, draws, comps, nodes, ablation, reference,
                                       "minimality"):
        units = prompt_ids(draw.prompts, pairs=False)
        select, test, _ = _halves(units)
        test_units = [units[i] for i in test]
        gen = torch.Generator().manual_seed(int(draw.seed))
        for v in comps:
            others = [c for c in comps if c != v]
            best: tuple[float, frozenset[Component], np.ndarray] | None = None
            for K in _subsets(others, n_subsets, gen, always=(frozenset(),)):
                without_k = [c for c in comps if c not in K]
                diff = runner.F(without_k) - runner.F([c for c in without_k if c != v])
                score = abs(float(np.mean(diff[select])) / float(np.mean(full[select])))
                if best is None or score > best[0]:
                    best = (score, K, diff)
            assert best is not None
            _, K, diff = best
            sign = 1.0 if float(np.mean(diff[select])) * float(np.mean(full[select])) >= 0 else -1.0
            chosen[f"seed {draw.seed} {v.label}"] = _klabel(K)[2:]
            rows[v][RowKey(draw.seed, None, f"{v.label}, {_klabel(K)}")] = (
                sign * diff[test], full[test], test_units)
    assert runner is not None
    members = [
        ratio_claim(f"{v.label} matters (|F(C\\(K+v)) - F(C\\K)|/F(M) > {effect:g} for the chosen K)",
                    f"marginal effect of {v.label} on {mname}", rows[v], threshold=effect,
                    alternative="greater", options=options, quorum=False)
        for v in comps
    ]
    return all_of(
        members,
        claim=f"circuit {_label(comps)} is minimal (each component > {effect:g} of F(M))",
        alpha=options.alpha,
        settings={**_settings(comps, ablation, reference, draws[0].metric, draws[0], runner),
                  "n_subsets": n_subsets,
                  "statistic": "|F(C\\(K+v)) - F(C\\K)| / F(M); K chosen on one half of the "
                               "distinct prompts, tested on the other"},
        model_info=handle.describe(), details={"chosen K": chosen}, hint=_MINIMALITY_HINT,
    )


assert_circuit_minimality = asserting(check_circuit_minimality)


__all__ = ["CircuitRunner", "assert_circuit_completeness", "assert_circuit_faithfulness",
           "assert_circuit_minimality", "check_circuit_completeness",
           "check_circuit_faithfulness", "check_circuit_minimality"]
