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

Edge circuits: ``circuit`` may also be an edge-level :class:`mi_assert.edges.Circuit` (or edge
names such as ``"L0H0->L1H0.k"``). The members are then edges, ``F(S)`` is the circuit run of
``S`` (:func:`mi_assert.edges.measure_circuits`: edges outside ``S`` feed their receiver the
sender's ``"corrupted"`` (default for edges), ``"mean"`` or ``"resample"`` value), ``M`` is every
edge of the graph (the clean run), and every ratio is taken relative to the clean - ablated gap
``F(M) - F(ablated)`` instead of ``F(M)`` (:mod:`mi_assert.edges.node_claims`, ``docs/edges.md``).
The claims' code below is shared: only the runner (what ``F(S)`` is) differs.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Hashable, Iterator, Mapping, Sequence
from typing import Any, Literal, Protocol, TypeVar

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

    def prefetch(self, sets: Sequence[Sequence[Component] | frozenset[Component]]) -> None:
        """Nothing to batch: each ``F`` is one run (the edge runner stacks its sets)."""


T = TypeVar("T", bound=Hashable)

#: one draw's runs: ``(draw, runner, F(M), F(ablated), prompt units)``; ``F(ablated)`` is 0
#: for node circuits (Wang et al.'s ratios are relative to ``F(M)``)
CircuitRun = tuple[Draw, Any, np.ndarray, np.ndarray, tuple[Hashable, ...]]


class CircuitClaims(Protocol):
    """What the three claims need from a circuit's level (nodes here, edges in
    :mod:`mi_assert.edges.node_claims`): its members, prompt draws, runner and wording."""

    handle: ModelHandle
    members: list[Any]
    draws: list[Draw]
    ratio: str  # the faithfulness ratio, as claim text writes it
    norm: str  # what the completeness / minimality differences are divided by
    member_word: str
    note: str  # appended to claim texts, e.g. ", corrupted ablation"
    hint: str
    default_max_members: int | None  # minimality: members tested when max_members is None

    def label(self, member: Any) -> str: ...

    def circuit_label(self) -> str: ...

    def units(self, draw: Draw) -> tuple[Hashable, ...]: ...

    def runs(self, what: str) -> Iterator[CircuitRun]: ...

    def settings(self, draw: Draw, runner: Any) -> dict[str, Any]: ...

    def figures(self) -> dict[str, Any]: ...

    def details(self, runs: Sequence[CircuitRun]) -> dict[str, Any]: ...


def _setup(model: Any, prompts: Any, circuit: Any, metric: Any, options: ClaimOptions,
           prompt_kwargs: Mapping[str, Any] | None, *, check_prompts: bool = True
           ) -> tuple[ModelHandle, list[Component], list[Draw]]:
    handle = resolve_model(model)
    comps = parse_components(handle, circuit)
    draws = prompt_draws(handle, None, None, prompts, metric, options.seeds,
                         need_corrupted=False, prompt_kwargs=prompt_kwargs)
    if check_prompts:
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


def _label(comps: Sequence[Component]) -> str:
    return "+".join(c.label for c in comps)


class _NodeClaims:
    """Node circuits (heads / MLPs knocked out by ``ablation``), Wang et al.'s ratios."""

    ratio = "F(C)/F(M)"
    norm = "F(M)"
    member_word = "component"
    note = ""
    hint = _MINIMALITY_HINT
    default_max_members: int | None = None

    def __init__(self, handle: ModelHandle, comps: list[Component], draws: list[Draw], *,
                 nodes: str, ablation: str, reference: Any) -> None:
        self.handle, self.members, self.draws = handle, comps, draws
        self.nodes, self.ablation, self.reference = nodes, ablation, reference

    def label(self, member: Component) -> str:
        return member.label

    def circuit_label(self) -> str:
        return _label(self.members)

    def units(self, draw: Draw) -> tuple[Hashable, ...]:
        return prompt_ids(draw.prompts, pairs=False)

    def runs(self, what: str) -> Iterator[CircuitRun]:
        for draw, runner, full in _runners(self.handle, self.draws, self.members, self.nodes,
                                           self.ablation, self.reference, what):
            yield draw, runner, full, np.zeros_like(full), self.units(draw)

    def settings(self, draw: Draw, runner: CircuitRunner) -> dict[str, Any]:
        return _settings(self.members, self.ablation, self.reference, draw.metric, draw, runner)

    def figures(self) -> dict[str, Any]:
        return {}

    def details(self, runs: Sequence[CircuitRun]) -> dict[str, Any]:
        return {}


def _is_edge_circuit(circuit: Any) -> bool:
    """Whether ``circuit`` is an edge circuit: a :class:`mi_assert.edges.Circuit`, an
    :class:`~mi_assert.edges.Edge`, or edges / edge names (``"L0H0->L1H0.k"``); a mix of edges
    and nodes is refused. (Edge objects exist only once :mod:`mi_assert.edges` is imported,
    so this does not import it.)"""
    circuit_mod = sys.modules.get("mi_assert.edges.circuit")
    graph_mod = sys.modules.get("mi_assert.edges.graph")
    if circuit_mod is not None and isinstance(circuit, circuit_mod.Circuit):
        return True

    def edge_like(item: Any) -> bool:
        return (isinstance(item, str) and "->" in item) or (
            graph_mod is not None and isinstance(item, graph_mod.Edge))

    if isinstance(circuit, str) or edge_like(circuit):
        return edge_like(circuit)
    if not isinstance(circuit, (list, tuple, set, frozenset)) or not circuit:
        return False
    flags = [edge_like(item) for item in circuit]
    if all(flags):
        return True
    if any(flags):
        raise MiAssertInputError(
            f"circuit {list(circuit)!r} mixes edges ('SENDER->RECEIVER', e.g. 'L0H0->L1H0.k') "
            "and nodes ('L1H0', 'mlp0'); a circuit is either a set of nodes (heads / MLPs) or a "
            "set of edges (mi_assert.edges.Circuit)")
    return False


def _claims(model: Any, prompts: Any, circuit: Any, metric: Any, options: ClaimOptions,
            prompt_kwargs: Mapping[str, Any] | None, *, ablation: str | None, reference: Any,
            nodes: str, check_prompts: bool = True) -> CircuitClaims:
    """The claims' view of ``circuit``: edge circuits go to :mod:`mi_assert.edges.node_claims`."""
    if _is_edge_circuit(circuit):
        from mi_assert.edges.node_claims import EdgeCircuitClaims

        return EdgeCircuitClaims.setup(model, prompts, circuit, metric, options, prompt_kwargs,
                                       ablation=ablation, reference=reference, nodes=nodes,
                                       check_prompts=check_prompts)
    handle, comps, draws = _setup(model, prompts, circuit, metric, options, prompt_kwargs,
                                  check_prompts=check_prompts)
    return _NodeClaims(handle, comps, draws, nodes=nodes,
                       ablation="mean" if ablation is None else ablation, reference=reference)


def _subsets(items: Sequence[T], n: int, gen: torch.Generator,
             always: Sequence[frozenset[T]] = ()) -> list[frozenset[T]]:
    """``always`` plus up to ``n`` distinct random non-empty subsets of ``items`` (seeded)."""
    out: list[frozenset[T]] = list(dict.fromkeys(always))
    items = list(items)
    tries = 0
    while len(out) < len(always) + n and tries < 20 * (n + 1) and items:
        tries += 1
        keep = torch.rand(len(items), generator=gen) < 0.5
        subset = frozenset(c for c, k in zip(items, keep.tolist(), strict=True) if k)
        if subset and subset not in out:
            out.append(subset)
    return out


Ablation = Literal["mean", "zero", "resample", "corrupted"]


def check_circuit_faithfulness(
    model: Any,
    prompts: Any,
    circuit: Any,
    metric: Any = "logit_diff",
    *,
    min_faithfulness: float = 0.8,
    ablation: Ablation | None = None,
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

    ``ablation``: for node circuits ``"mean"`` (default), ``"zero"`` or ``"resample"``; for an
    edge circuit (:class:`mi_assert.edges.Circuit` or edge names) ``"corrupted"`` (default),
    ``"mean"`` or ``"resample"``, and the ratio is ``(F(C) - F(ablated)) / (F(M) -
    F(ablated))`` (:mod:`mi_assert.edges.node_claims`). ``seeds`` vary the bootstrap (and a
    ``resample`` ablation) with explicit prompts and draw fresh prompts with a generator name;
    ``quorum`` seeds must pass (default all); each seed needs ``min_prompts`` distinct
    prompts."""
    options = claim_options(seeds=seeds, quorum=quorum, alpha=alpha, n_resamples=n_resamples,
                            min_prompts=min_prompts)
    threshold = check_threshold(min_faithfulness, "greater", None, "min_faithfulness")
    fam = _claims(model, prompts, circuit, metric, options, prompt_kwargs, ablation=ablation,
                  reference=reference, nodes=nodes)
    rows: dict[RowKey, RatioRow] = {}
    runs = list(fam.runs("faithfulness"))
    for draw, runner, full, base, units in runs:
        # node circuits: base is 0 (subtracting it is exact), the row is (F(C), F(M))
        rows[RowKey(draw.seed)] = (runner.F(fam.members) - base, full - base, units)
    first = runs[0]
    spec = ratio_claim(
        f"circuit {fam.circuit_label()} is faithful ({fam.ratio} > {threshold:g}{fam.note})",
        f"faithfulness of {metric_name(fam.draws[0].metric)}", rows, threshold=threshold,
        alternative="greater", options=options,
        settings=fam.settings(first[0], first[1]),
        model_info=fam.handle.describe(),
        details={"F(M) per seed": [round(float(np.mean(r[2])), 4) for r in runs],
                 "F(C) per seed": [round(float(np.mean(r[1].F(fam.members))), 4) for r in runs],
                 **fam.details(runs)},
        figures=fam.figures(),
    )
    return spec.evaluate(options.alpha)


assert_circuit_faithfulness = asserting(check_circuit_faithfulness)


def _check_positive(value: Any, name: str, *, strict: bool) -> float:
    ok = (not isinstance(value, bool) and isinstance(value, (int, float, np.integer, np.floating))
          and math.isfinite(float(value)) and (float(value) > 0 if strict else float(value) >= 0))
    if not ok:
        raise MiAssertInputError(f"{name} must be a finite number {'>' if strict else '>='} 0; got {value!r}")
    return float(value)


def _klabel(K: frozenset[Any], fam: CircuitClaims) -> str:
    return "K={" + ",".join(sorted(fam.label(c) for c in K)) + "}"


def check_circuit_completeness(
    model: Any,
    prompts: Any,
    circuit: Any,
    metric: Any = "logit_diff",
    *,
    max_gap: float = 0.2,
    n_subsets: int = 8,
    ablation: Ablation | None = None,
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
    Every seed and every K must pass (module docstring). For an edge circuit K is a set of its
    edges, ``M\\K`` every graph edge but K, and the gap is relative to ``F(M) - F(ablated)``;
    ``ablation`` as :func:`check_circuit_faithfulness` takes it."""
    options = claim_options(seeds=seeds, alpha=alpha, n_resamples=n_resamples,
                            min_prompts=min_prompts)
    gap = _check_positive(max_gap, "max_gap", strict=True)
    n_subsets = check_count(n_subsets, "n_subsets", minimum=0)
    fam = _claims(model, prompts, circuit, metric, options, prompt_kwargs, ablation=ablation,
                  reference=reference, nodes=nodes)
    comps = fam.members
    mname = metric_name(fam.draws[0].metric)
    above: dict[RowKey, RatioRow] = {}
    below: dict[RowKey, RatioRow] = {}
    subsets_per_seed: dict[str, list[str]] = {}
    runs = list(fam.runs("completeness"))
    for draw, runner, full, base, units in runs:
        gen = torch.Generator().manual_seed(int(draw.seed))
        subsets = _subsets(comps, n_subsets, gen, always=(frozenset(), frozenset(comps)))
        subsets_per_seed[f"seed {draw.seed}"] = [_klabel(K, fam) for K in subsets]
        pairs = [([c for c in comps if c not in K], [n for n in runner.nodes if n not in K])
                 for K in subsets]
        runner.prefetch([s for pair in pairs for s in pair])
        den = full - base
        for K, (circuit_without, model_without) in zip(subsets, pairs, strict=True):
            diff = runner.F(circuit_without) - runner.F(model_without)
            key = RowKey(draw.seed, None, _klabel(K, fam))
            above[key] = (diff, den, units)
            below[key] = (-diff, den, units)
    norm = fam.norm
    members = [
        ratio_claim(f"F(C\\K) - F(M\\K) < {gap:g} {norm} for every K",
                    f"(F(C\\K) - F(M\\K))/{norm} of {mname}", above, threshold=gap,
                    alternative="less", options=options, quorum=False),
        ratio_claim(f"F(M\\K) - F(C\\K) < {gap:g} {norm} for every K",
                    f"(F(M\\K) - F(C\\K))/{norm} of {mname}", below, threshold=gap,
                    alternative="less", options=options, quorum=False),
    ]
    return all_of(
        members,
        claim=f"circuit {fam.circuit_label()} is complete (every K: |F(C\\K) - F(M\\K)| < "
              f"{gap:g} {norm}{fam.note})",
        alpha=options.alpha,
        settings={**fam.settings(runs[0][0], runs[0][1]), "n_subsets": n_subsets,
                  "statistic": f"|F(C\\K) - F(M\\K)| / {norm} as two one-sided member claims"},
        model_info=fam.handle.describe(),
        details={"subsets": subsets_per_seed, **fam.details(runs)}, figures=fam.figures(),
    )


assert_circuit_completeness = asserting(check_circuit_completeness)


def _halves(units: Sequence[Hashable]) -> tuple[np.ndarray, np.ndarray, int]:
    """Prompt indices of the select and test halves (distinct prompts alternate between them,
    copies of a prompt stay together) and the number of distinct prompts in the test half."""
    first: dict[Hashable, int] = {}
    index = np.array([first.setdefault(u, len(first)) for u in units])
    return np.flatnonzero(index % 2 == 0), np.flatnonzero(index % 2 == 1), len(first) // 2


def _tested_members(members: Sequence[T], cap: int | None, seed: int) -> list[T]:
    """Every member, or a uniform sample of ``cap`` of them (torch generator seeded with
    ``seed``), kept in circuit order."""
    if cap is None or len(members) <= cap:
        return list(members)
    gen = torch.Generator().manual_seed(int(seed))
    chosen = sorted(torch.randperm(len(members), generator=gen)[:cap].tolist())
    return [members[i] for i in chosen]


def check_circuit_minimality(
    model: Any,
    prompts: Any,
    circuit: Any,
    metric: Any = "logit_diff",
    *,
    min_effect: float = 0.01,
    n_subsets: int = 6,
    ablation: Ablation | None = None,
    reference: Any = None,
    nodes: str = "auto",
    max_members: int | None = None,
    seeds: Sequence[int] | int = (0,),
    prompt_kwargs: Mapping[str, Any] | None = None,
    alpha: float = 0.05,
    n_resamples: int = 1000,
    min_prompts: int = DEFAULT_MIN_PROMPTS,
) -> Evidence:
    """Claim: every circuit component matters: for each v some K ⊆ C\\{v} gives
    ``|F(C\\(K∪{v})) - F(C\\K)| / F(M) >= min_effect`` (module docstring for the K search).
    The test half of the prompts needs ``min_prompts`` distinct prompts, so give twice that.

    For an edge circuit the members are its edges and the effect is relative to ``F(M) -
    F(ablated)``. ``max_members``: test at most this many members, a uniform sample seeded
    with the first seed (default: every node of a node circuit; at most
    :data:`mi_assert.edges.node_claims.MAX_TESTED_EDGES` edges of an edge circuit); the
    settings say which were tested."""
    options = claim_options(seeds=seeds, alpha=alpha, n_resamples=n_resamples,
                            min_prompts=min_prompts)
    effect = _check_positive(min_effect, "min_effect", strict=False)
    n_subsets = check_count(n_subsets, "n_subsets", minimum=0)
    cap = None if max_members is None else check_count(max_members, "max_members", minimum=1)
    fam = _claims(model, prompts, circuit, metric, options, prompt_kwargs, ablation=ablation,
                  reference=reference, nodes=nodes, check_prompts=False)
    comps = fam.members
    for draw in fam.draws:
        n_test = _halves(fam.units(draw))[2]
        if n_test < options.min_prompts:
            raise MiAssertInputError(
                f"seed {draw.seed}: minimality chooses K on half the prompts and tests it on the "
                f"other half; the test half has {n_test} distinct prompts (of "
                f"{len(draw.prompts)} given) but needs at least min_prompts="
                f"{options.min_prompts}: give at least {2 * options.min_prompts} distinct "
                "prompts (or lower min_prompts)")
    cap = fam.default_max_members if cap is None else cap
    tested = _tested_members(comps, cap, options.seeds[0])
    mname = metric_name(fam.draws[0].metric)
    rows: dict[Any, dict[RowKey, RatioRow]] = {v: {} for v in tested}
    chosen: dict[str, str] = {}
    runs = list(fam.runs("minimality"))
    for draw, runner, full, base, units in runs:
        select, test, _ = _halves(units)
        test_units = [units[i] for i in test]
        gen = torch.Generator().manual_seed(int(draw.seed))
        den = full - base
        plan = [(v, _subsets([c for c in comps if c != v], n_subsets, gen, always=(frozenset(),)))
                for v in tested]
        runner.prefetch([s for v, Ks in plan for K in Ks
                         for s in ([c for c in comps if c not in K],
                                   [c for c in comps if c not in K and c != v])])
        for v, Ks in plan:
            best: tuple[float, frozenset[Any], np.ndarray] | None = None
            for K in Ks:
                without_k = [c for c in comps if c not in K]
                diff = runner.F(without_k) - runner.F([c for c in without_k if c != v])
                score = abs(float(np.mean(diff[select])) / float(np.mean(den[select])))
                if best is None or score > best[0]:
                    best = (score, K, diff)
            assert best is not None
            _, K, diff = best
            sign = 1.0 if float(np.mean(diff[select])) * float(np.mean(den[select])) >= 0 else -1.0
            chosen[f"seed {draw.seed} {fam.label(v)}"] = _klabel(K, fam)[2:]
            rows[v][RowKey(draw.seed, None, f"{fam.label(v)}, {_klabel(K, fam)}")] = (
                sign * diff[test], den[test], test_units)
    norm = fam.norm
    members = [
        ratio_claim(f"{fam.label(v)} matters (|F(C\\(K+v)) - F(C\\K)|/{norm} > {effect:g} for "
                    "the chosen K)",
                    f"marginal effect of {fam.label(v)} on {mname}", rows[v], threshold=effect,
                    alternative="greater", options=options, quorum=False)
        for v in tested
    ]
    settings = {**fam.settings(runs[0][0], runs[0][1]), "n_subsets": n_subsets,
                "statistic": f"|F(C\\(K+v)) - F(C\\K)| / {norm}; K chosen on one half of the "
                             "distinct prompts, tested on the other"}
    details: dict[str, Any] = {"chosen K": chosen, **fam.details(runs)}
    if cap is not None:
        settings["tested"] = (
            f"{len(tested)} of {len(comps)} circuit {fam.member_word}s (max_members={cap}"
            + (f"; a uniform sample, torch generator seeded with seed {options.seeds[0]})"
               if len(tested) < len(comps) else ")"))
        if len(tested) < len(comps):
            details["untested"] = [fam.label(c) for c in comps if c not in set(tested)]
    return all_of(
        members,
        claim=f"circuit {fam.circuit_label()} is minimal (each {fam.member_word} > {effect:g} of "
              f"{norm}{fam.note})",
        alpha=options.alpha, settings=settings, model_info=fam.handle.describe(),
        details=details, figures=fam.figures(), hint=fam.hint,
    )


assert_circuit_minimality = asserting(check_circuit_minimality)


__all__ = ["CircuitClaims", "CircuitRunner", "assert_circuit_completeness",
           "assert_circuit_faithfulness", "assert_circuit_minimality",
           "check_circuit_completeness", "check_circuit_faithfulness",
           "check_circuit_minimality"]
