"""Faithfulness, completeness and minimality (Wang et al. 2022) of an *edge* circuit.

:func:`mi_assert.check_circuit_faithfulness`, :func:`~mi_assert.check_circuit_completeness` and
:func:`~mi_assert.check_circuit_minimality` take a node circuit (heads / MLPs) or an edge
circuit (a :class:`~mi_assert.edges.Circuit`, edge names or :class:`~mi_assert.edges.Edge`\\ s).
The claims' code (:mod:`mi_assert.causal.circuits`: subsets K, the select/test halves of
minimality, rows for the engine) is shared; this module supplies what differs for edges:

* the members are edges, and ``M`` is every edge of the model's graph;
* ``F(S)`` per prompt pair is the circuit run of ``S`` (:func:`mi_assert.edges.measure_circuits`,
  the one code path for edge circuits): only ``S``'s edges carry the clean signal, every other
  edge feeds its receiver the sender's ablated value, ``ablation="corrupted"`` (default),
  ``"mean"`` or ``"resample"`` (:mod:`mi_assert.edges.ablation`). ``F(M)`` is the clean run and
  ``F(ablated)`` (no edge) the model with every edge ablated: for ``"corrupted"`` the
  corrupted run;
* every ratio is relative to the clean - ablated gap ``F(M) - F(ablated)``, where the node
  claims divide by ``F(M)``. Wang et al.'s ``F(C)/F(M)`` assumes a knocked-out model scores
  about 0, which mean ablation of heads gives on logit differences but corrupted patching
  does not (on swap pairs ``F(ablated)`` is minus ``F(M)``). So faithfulness is
  ``(F(C) - F(ablated)) / (F(M) - F(ablated))``, the edge family's faithfulness
  (:class:`~mi_assert.edges.CircuitMetrics`); completeness and minimality keep their
  differences ``F(C\\K) - F(M\\K)`` and ``F(C\\K) - F(C\\(K∪{e}))`` (a baseline cancels in
  them) and divide them by the gap. With ``F(ablated) = 0`` all three are the node claims;
* units are prompt *pairs* (the clean and the corrupted prompt); each seed's row needs
  ``min_prompts`` distinct pairs, and the prompts must be pairs (a PromptSet with corrupted
  prompts, or a generator name that makes them), whatever the ablation kind: the mean and
  resample kinds are taken over the corrupted prompts;
* a ``"resample"`` derangement is seeded with each row's claim seed, as the node claims seed
  their resampling;
* minimality tests every edge of circuits up to :data:`MAX_TESTED_EDGES` edges, and a seeded
  uniform sample of that many edges of larger ones (``max_members=`` changes the cap; the
  evidence lists the untested edges);
* the ablation kind is in every claim's text (``"..., mean ablation)"``) and in
  ``settings["ablation"]`` as ``"<kind>: <sentence>"``; the circuit's drawing is
  ``figures["circuit"]``.

Refused with :class:`~mi_assert.errors.MiAssertInputError` before any forward pass: an empty
circuit, one with no edge into the logits, an edge not in the model's graph, a backend the edge
engine cannot hook (anything but a TransformerLens ``HookedTransformer``), ``ablation="zero"``,
``reference=`` or ``nodes=`` (node-circuit options) and prompts without corrupted prompts.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from mi_assert.backends.base import ModelHandle
from mi_assert.causal.draws import Draw, check_enough_prompts, prompt_draws
from mi_assert.causal.metrics import metric_name
from mi_assert.causal.recovery import check_gap
from mi_assert.edges.ablation import check_ablation, describe_ablation
from mi_assert.edges.circuit import Circuit
from mi_assert.edges.claims import _label, claimed_circuit, measure_circuits
from mi_assert.edges.drawing import circuit_figure
from mi_assert.edges.graph import Edge, EdgeGraph
from mi_assert.edges.tl_model import hooked_transformer
from mi_assert.errors import MiAssertInputError
from mi_assert.loading import resolve_model
from mi_assert.stats.options import ClaimOptions

#: minimality tests at most this many edges of an edge circuit (a seeded sample beyond it)
MAX_TESTED_EDGES = 50
FAITHFULNESS = ("(F(C) - F(ablated)) / (F(M) - F(ablated)), a ratio of means over prompt pairs; "
                "F(S): only the edges of S carry the clean signal (mi_assert.edges."
                "measure_circuits); F(M): every edge, the clean run; F(ablated): no edge")
_HINT = ("hint: an edge whose best K shows no effect is not needed in the circuit (or its effect "
         "is below min_effect).")


class EdgeCircuitRunner:
    """``F(S)`` per prompt pair for edge sets ``S`` on one prompt draw, memoised; sets are
    stacked into one :func:`~mi_assert.edges.measure_circuits` call by :meth:`prefetch`."""

    def __init__(self, handle: ModelHandle, graph: EdgeGraph, draw: Draw, ablation: str) -> None:
        self.handle, self.graph, self.draw, self.ablation = handle, graph, draw, ablation
        #: every member of the model: the graph's edges (``M``)
        self.nodes: tuple[Edge, ...] = graph.edges
        baseline = self._measure([])
        self.clean, self.ablated, self.units = baseline.clean, baseline.corrupted, baseline.units
        # no edge is F(ablated) bit for bit, every edge the clean run (to float noise): use
        # the recorded runs themselves, so K = {} gives F(M \ K) = F(M) exactly
        self._memo: dict[frozenset[Edge], np.ndarray] = {frozenset(): self.ablated,
                                                         frozenset(graph.edges): self.clean}

    def _measure(self, sets: Sequence[frozenset[Edge]]) -> Any:
        return measure_circuits(self.handle, [Circuit(self.graph, tuple(s)) for s in sets],
                                self.draw.prompts, None, self.draw.metric,
                                ablation=self.ablation,  # type: ignore[arg-type]
                                ablation_seed=self.draw.seed)

    def prefetch(self, sets: Sequence[Sequence[Edge] | frozenset[Edge]]) -> None:
        """Run every set not measured yet, stacked in one call."""
        missing = list(dict.fromkeys(k for k in map(frozenset, sets) if k not in self._memo))
        if missing:
            measured = self._measure(missing)
            for key, row in zip(missing, measured.per_prompt, strict=True):
                self._memo[key] = row

    def F(self, kept: Sequence[Edge] | frozenset[Edge]) -> np.ndarray:
        key = frozenset(kept)
        if key not in self._memo:
            self.prefetch([key])
        return self._memo[key]

    def full(self) -> np.ndarray:
        return self.clean


class EdgeCircuitClaims:
    """The edge level of :mod:`mi_assert.causal.circuits`' claims (module docstring)."""

    ratio = "(F(C) - F(ablated))/(F(M) - F(ablated))"
    norm = "(F(M) - F(ablated))"
    member_word = "edge"
    hint = _HINT
    default_max_members: int | None = MAX_TESTED_EDGES

    def __init__(self, handle: ModelHandle, graph: EdgeGraph, circuit: Circuit,
                 draws: list[Draw], ablation: str) -> None:
        self.handle, self.graph, self.circuit, self.draws = handle, graph, circuit, draws
        self.ablation = ablation
        self.members: list[Any] = list(circuit.edges)
        self.note = f", {ablation} ablation"

    @classmethod
    def setup(cls, model: Any, prompts: Any, circuit: Any, metric: Any, options: ClaimOptions,
              prompt_kwargs: Mapping[str, Any] | None, *, ablation: str | None, reference: Any,
              nodes: str, check_prompts: bool = True) -> EdgeCircuitClaims:
        """Validate everything (module docstring) before any forward pass."""
        if ablation == "zero":
            raise MiAssertInputError(
                "ablation='zero' knocks out nodes; an edge circuit's other edges carry their "
                "sender's ablated value: allowed 'corrupted', 'mean', 'resample'")
        kind = check_ablation("corrupted" if ablation is None else ablation)
        if reference is not None:
            raise MiAssertInputError(
                "reference= sets the mean of a node circuit's mean ablation; an edge circuit's "
                "ablated values come from the corrupted prompts of the pairs (ablation='mean' "
                "averages them): drop reference=")
        if nodes != "auto":
            raise MiAssertInputError(
                f"nodes={nodes!r} chooses the node set of a node circuit; an edge circuit's "
                "members are its edges and M is every edge of the graph: drop nodes=")
        handle = resolve_model(model)
        hooked_transformer(handle)  # refuses backends the edge engine cannot hook
        graph = EdgeGraph.from_handle(handle)
        claimed = claimed_circuit(graph, circuit)
        draws = prompt_draws(handle, None, None, prompts, metric, options.seeds,
                             need_corrupted=False, prompt_kwargs=prompt_kwargs)
        for draw in draws:
            if draw.prompts.corrupted is None:
                raise MiAssertInputError(
                    "an edge circuit runs on clean/corrupted prompt pairs (its other edges carry "
                    f"their sender's {kind} value, taken from the corrupted prompts): pass a "
                    "PromptSet with corrupted prompts (e.g. mi_assert.prompts.pairs."
                    "induction_pairs) or a generator name that makes pairs")
            check_ablation(kind, len(draw.prompts))
        if check_prompts:
            check_enough_prompts(draws, options.min_prompts, pairs=True)
        return cls(handle, graph, claimed, draws, kind)

    def label(self, member: Edge) -> str:
        return member.name

    def circuit_label(self) -> str:
        return _label(self.circuit)

    def units(self, draw: Draw) -> tuple[Hashable, ...]:
        """One unit per prompt pair, as :class:`~mi_assert.edges.CircuitMetrics` has them."""
        assert draw.prompts.corrupted is not None
        return tuple(zip(map(tuple, draw.prompts.clean.tolist()),
                         map(tuple, draw.prompts.corrupted.tolist()), strict=True))

    def runs(self, what: str) -> Iterator[tuple[Draw, EdgeCircuitRunner, np.ndarray, np.ndarray,
                                                tuple[Hashable, ...]]]:
        """``(draw, runner, F(M), F(ablated), units)`` per draw, after checking the gap.
        Draws that share their prompts share a runner unless the ablation is seeded."""
        shared: dict[int, EdgeCircuitRunner] = {}
        for draw in self.draws:
            runner = shared.get(id(draw.prompts)) if self.ablation != "resample" else None
            if runner is None:
                runner = EdgeCircuitRunner(self.handle, self.graph, draw, self.ablation)
                shared[id(draw.prompts)] = runner
            check_gap(runner.clean, runner.ablated,
                      what=f"clean - ablated ({self.ablation} ablation; {what} is relative to it)")
            yield draw, runner, runner.clean, runner.ablated, runner.units

    def settings(self, draw: Draw, runner: EdgeCircuitRunner) -> dict[str, Any]:
        out = {"circuit": self.circuit.names, "level": "edges",
               "ablation": describe_ablation(self.ablation, draw.seed),
               "metric": metric_name(draw.metric), "n_edges": len(self.circuit),
               "graph_edges": self.graph.n_edges, "prompts": draw.source,
               "n_prompts": len(draw.prompts), "faithfulness": FAITHFULNESS}
        if self.ablation == "resample":
            out["ablation_seed"] = "each row's claim seed"
        return out

    def figures(self) -> dict[str, Any]:
        return {"circuit": circuit_figure(self.graph, self.circuit)}

    def details(self, runs: Sequence[tuple[Any, ...]]) -> dict[str, Any]:
        return {"F(ablated) per seed": [round(float(np.mean(r[3])), 4) for r in runs]}


__all__ = ["EdgeCircuitClaims", "EdgeCircuitRunner", "MAX_TESTED_EDGES"]
