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

Claims (all statistics are ratios of means with a paired bootstrap over prompts):

* **faithfulness** = ``F(C) / F(M)``; passes when its lower bound > ``min_faithfulness``.
* **completeness**: for sampled subsets ``K ⊆ C`` (seeded; always ∅ and C itself),
  ``|F(C\\K) - F(M\\K)| / F(M)`` must be < ``max_gap`` for every K (two one-sided bounds per K;
  every K must pass, an intersection-union test).
* **minimality**: for each ``v ∈ C`` some ``K ⊆ C\\{v}`` gives
  ``|F(C\\(K∪{v})) - F(C\\K)| / F(M)`` ≥ ``min_effect`` (default 0.01, Wang et al.'s 1% bar
  relative to the full-model metric). K is chosen on half the prompts (the one with the largest
  point estimate among the sampled subsets) and tested on the other half, so choosing the best
  K does not bias the bound.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor

from mi_assert.backends import as_handle
from mi_assert.backends.base import ModelHandle
from mi_assert.causal.components import Component, all_heads, all_mlps, parse_components
from mi_assert.causal.draws import Draw, prompt_draws
from mi_assert.causal.interventions import ABLATION_METHODS, ablation_sources, edits_for
from mi_assert.causal.metrics import evaluate_metric, metric_name
from mi_assert.causal.recovery import (
    check_gap,
    family_evidence,
    ratio_bootstrap,
    ratio_evidence,
    row_seed,
)
from mi_assert.errors import MiAssertInputError
from mi_assert.stats import Evidence, SeedResult, raise_if_failed

NODE_SETS: tuple[str, ...] = ("auto", "heads", "heads+mlps")


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


def _setup(model: Any, prompts: Any, circuit: Any, metric: Any, seeds: Any,
           prompt_kwargs: Mapping[str, Any] | None) -> tuple[ModelHandle, list[Component], list[Draw]]:
    handle = as_handle(model)
    comps = parse_components(handle, circuit)
    draws = prompt_draws(handle, None, None, prompts, metric, seeds, need_corrupted=False,
                         prompt_kwargs=prompt_kwargs)
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


def assert_circuit_faithfulness(
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
    prompt_kwargs: Mapping[str, Any] | None = None,
    alpha: float = 0.05,
    n_resamples: int = 2000,
) -> Evidence:
    """Claim: the circuit alone (everything else knocked out) keeps at least
    ``min_faithfulness`` of the full model's metric: ``F(C)/F(M)`` (module docstring)."""
    __tracebackhide__ = True
    handle, comps, draws = _setup(model, prompts, circuit, metric, seeds, prompt_kwargs)
    rows: dict[tuple[int, int | None, str], tuple[np.ndarray, np.ndarray]] = {}
    runner = None
    for draw, runner, full in _runners(handle, draws, comps, nodes, ablation, reference,
                                       "faithfulness"):
        rows[(draw.seed, None, "")] = (runner.F(comps), full)
    assert runner is not None
    evidence = ratio_evidence(
        f"circuit {'+'.join(c.label for c in comps)} is faithful (F(C)/F(M) > {min_faithfulness:g})",
        f"faithfulness of {metric_name(draws[0].metric)}", rows, threshold=min_faithfulness,
        alternative="greater", alpha=alpha, n_resamples=n_resamples,
        settings=_settings(comps, ablation, reference, draws[0].metric, draws[0], runner),
        model_info=handle.describe(),
        details={"F(M) per seed": [round(float(np.mean(r[1])), 4) for r in rows.values()],
                 "F(C) per seed": [round(float(np.mean(r[0])), 4) for r in rows.values()]},
    )
    return raise_if_failed(evidence)


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


def _two_sided_member(claim: str, metric: str, key: tuple[int, int | None, str], num: np.ndarray,
                      den: np.ndarray, max_gap: float, alpha: float, n_resamples: int,
                      seed: int) -> Evidence:
    """|mean(num)/mean(den)| < max_gap via two one-sided bounds (both must clear)."""
    upper = ratio_bootstrap(num, den, threshold=max_gap, alternative="less", alpha=alpha,
                            seed=seed, n_resamples=n_resamples)
    lower = ratio_bootstrap(-num, den, threshold=max_gap, alternative="less", alpha=alpha,
                            seed=seed, n_resamples=n_resamples)
    bound = max(upper.bound, lower.bound)  # upper bound of |ratio|
    passed = bool(bound < max_gap)
    row = SeedResult(seed=key[0], estimate=abs(upper.estimate), low=upper.low, high=upper.high,
                     bound=bound, n=upper.n, passed=passed,
                     p_value=max(upper.p_value or 0.0, lower.p_value or 0.0), label=key[2])
    return Evidence(claim=claim, metric=metric, estimate=abs(upper.estimate), low=upper.low,
                    high=upper.high, bound=bound, n=upper.n, threshold=max_gap, alpha=alpha,
                    alternative="less", passed=passed, per_seed=[row])


def assert_circuit_completeness(
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
) -> Evidence:
    """Claim: knocking out any subset K of the circuit hurts the circuit as it hurts the model:
    ``|F(C\\K) - F(M\\K)| / F(M) < max_gap`` for ∅, C and ``n_subsets`` random K (seeded)."""
    __tracebackhide__ = True
    handle, comps, draws = _setup(model, prompts, circuit, metric, seeds, prompt_kwargs)
    members: list[Evidence] = []
    runner = None
    mname = metric_name(draws[0].metric)
    for draw, runner, full in _runners(handle, draws, comps, nodes, ablation, reference,
                                       "completeness"):
        gen = torch.Generator().manual_seed(int(draw.seed))
        subsets = _subsets(comps, n_subsets, gen, always=(frozenset(), frozenset(comps)))
        for K in subsets:
            f_c = runner.F([c for c in comps if c not in K])
            f_m = runner.F([n for n in runner.nodes if n not in K])
            klabel = "K={" + ",".join(sorted(c.label for c in K)) + "}"
            key = (draw.seed, None, klabel)
            members.append(_two_sided_member(
                f"|F(C\\K) - F(M\\K)|/F(M) < {max_gap:g} for {klabel}", f"incompleteness of {mname}",
                key, f_c - f_m, full, max_gap, alpha, n_resamples, row_seed(0, key)))
    assert runner is not None
    evidence = family_evidence(
        f"circuit {'+'.join(c.label for c in comps)} is complete (every K: gap < {max_gap:g} of F(M))",
        f"incompleteness of {mname}", members,
        settings={**_settings(comps, ablation, reference, draws[0].metric, draws[0], runner),
                  "n_subsets": n_subsets, "alpha": alpha,
                  "statistic": "|F(C\\K) - F(M\\K)| / F(M), two one-sided bounds per K"},
        model_info=handle.describe(),
    )
    return raise_if_failed(evidence)


def assert_circuit_minimality(
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
) -> Evidence:
    """Claim: every circuit component matters: for each v some K ⊆ C\\{v} gives
    ``|F(C\\(K∪{v})) - F(C\\K)| / F(M) >= min_effect`` (module docstring for the K search)."""
    __tracebackhide__ = True
    handle, comps, draws = _setup(model, prompts, circuit, metric, seeds, prompt_kwargs)
    mname = metric_name(draws[0].metric)
    members: list[Evidence] = []
    runner = None
    chosen: dict[str, str] = {}
    for draw in draws:
        n = len(draw.prompts)
        if n < 8:
            raise MiAssertInputError(f"minimality needs >= 8 prompts (half choose K, half test it); got {n}")
    for draw, runner, full in _runners(handle, draws, comps, nodes, ablation, reference,
                                       "minimality"):
        n = len(draw.prompts)
        select = np.arange(0, n, 2)
        test = np.arange(1, n, 2)
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
            klabel = "{" + ",".join(sorted(c.label for c in K)) + "}"
            key = (draw.seed, None, f"{v.label}, K={klabel}")
            chosen[f"seed {draw.seed} {v.label}"] = klabel
            res = ratio_bootstrap(sign * diff[test], full[test], threshold=min_effect,
                                  alternative="greater", alpha=alpha, seed=row_seed(0, key),
                                  n_resamples=n_resamples)
            row = SeedResult.from_bootstrap(draw.seed, res, label=key[2])
            members.append(Evidence(
                claim=f"{v.label} matters (|F(C\\(K+v)) - F(C\\K)|/F(M) > {min_effect:g}, K={klabel})",
                metric=f"marginal effect of {mname}", estimate=res.estimate, low=res.low,
                high=res.high, bound=res.bound, n=res.n, threshold=min_effect, alpha=alpha,
                alternative="greater", passed=res.passes(), per_seed=[row]))
    assert runner is not None
    evidence = family_evidence(
        f"circuit {'+'.join(c.label for c in comps)} is minimal (each component > {min_effect:g} of F(M))",
        f"marginal effect of {mname}", members,
        settings={**_settings(comps, ablation, reference, draws[0].metric, draws[0], runner),
                  "n_subsets": n_subsets, "alpha": alpha,
                  "statistic": "|F(C\\(K+v)) - F(C\\K)| / F(M); K chosen on even prompts, tested on odd"},
        model_info=handle.describe(), details={"chosen K": chosen},
    )
    return raise_if_failed(evidence, "hint: a component whose best K shows no effect is not needed "
                                     "in the circuit (or its effect is below min_effect).")


__all__ = ["assert_circuit_completeness", "assert_circuit_faithfulness", "assert_circuit_minimality",
           "CircuitRunner"]
