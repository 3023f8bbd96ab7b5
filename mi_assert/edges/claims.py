"""Claims about an edge circuit: it beats random circuits, knocking it out costs more than
knocking out random edge sets, and it is equivalent to the model.

``F(S)`` is the metric per prompt when only the edges of ``S`` carry the clean signal
(:mod:`mi_assert.edges.circuit_run`, denoising) and every other edge its sender's ablated value,
chosen by ``ablation`` (:mod:`mi_assert.edges.ablation`): ``"corrupted"`` (default: that
prompt's corrupted output), ``"mean"`` (the mean over the corrupted prompts, per position) or
``"resample"`` (another corrupted prompt's output, a seeded derangement). The faithfulness of
a circuit is the ratio of means over prompts
``(F(C) - F(ablated)) / (F(clean) - F(ablated))``, ``F(ablated)`` being the model with every
edge ablated the same way (for ``"corrupted"``: the corrupted run): 1 = the circuit alone
restores the clean metric, 0 = it restores nothing.

* **beats random** (sufficiency in the sense of Shi et al. 2024): ``n_random`` circuits of the
  circuit's size are drawn i.i.d., each uniformly from all same-size edge sets of the graph
  (seeded; a draw may share edges with the circuit or equal it). The circuit beats a draw when
  its faithfulness is greater by more than ``tie_tolerance`` (a tie counts against it). The
  claim ``P(beat) > q`` is decided by the engine with one unit per draw, as
  ``suites/ioi/ioi_random_control.py`` does for head sets.
* **necessary** (partial necessity, Shi et al. 2024): the model without a set ``S`` is the
  circuit run of every other edge (:func:`knocked_out`); its loss is ``1 - faithfulness``.
  ``n_random`` same-size sets are drawn as for beats-random; the circuit beats a draw when its
  knockout loses more by more than ``tie_tolerance`` (ties count against it), and the claim
  ``P(beat) > q`` goes to the engine with one unit per draw. A draw sharing a vital edge with
  the circuit ties, so ``P(beat)`` is at most the share of draws that miss the circuit
  (reported).
* **equivalent** (two one-sided tests): per prompt ``d = (F(C) - F(clean)) / |mean(F(clean) -
  F(ablated))|``; the claim holds when ``mean d > -epsilon`` and ``mean d < +epsilon`` each
  pass at ``alpha`` (:func:`~mi_assert.stats.all_of`, intersection-union, so TOST has level
  ``alpha``).
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from mi_assert.backends.base import eval_mode
from mi_assert.causal.metrics import metric_name
from mi_assert.causal.recovery import check_gap
from mi_assert.causal.sweeps import _resolve_inputs
from mi_assert.edges.ablation import AblationKind, ablated_run, check_ablation, describe_ablation
from mi_assert.edges.circuit import Circuit
from mi_assert.edges.circuit_run import circuit_runs
from mi_assert.edges.drawing import circuit_figure
from mi_assert.edges.exact import rows_per_forward
from mi_assert.edges.graph import Edge, EdgeGraph
from mi_assert.edges.readout import MetricReadout
from mi_assert.edges.senders import record_run
from mi_assert.edges.tl_model import hooked_transformer
from mi_assert.errors import MiAssertInputError, check_finite
from mi_assert.loading import resolve_model
from mi_assert.stats import ClaimSpec, Evidence, Mean, RatioOfMeans, all_of
from mi_assert.verdict import asserting

#: how the edges outside a circuit are knocked out by default (recorded in every claim's
#: settings as ``"<kind>: <sentence>"``, :func:`~mi_assert.edges.ablation.describe_ablation`)
ABLATION = describe_ablation("corrupted")
#: the fewest random circuits a comparison may rest on
MIN_RANDOM = 20
#: faithfulness differences this small are ties: fp32 noise in a circuit run is ~1e-6 of the
#: clean-corrupted gap, and a circuit that restores nothing must not "beat" an empty draw
TIE_TOLERANCE = 1e-3
#: default q of the necessity claim: a random set that shares a vital edge with the circuit
#: knocks out as much (a tie), so P(beat) is at most the chance that a draw misses the
#: circuit: 0.89 for 3 of 81 edges, where 100 draws give about 81 to 96 wins (binomial 1st
#: to 99th percentile)
NECESSITY_Q = 0.7
#: knockout losses (shares of the gap) this close are ties in the necessity claim: most random
#: knockouts cost exactly nothing, and a set costing 0.1% of the gap must not count as vital
NECESSITY_TIE_TOLERANCE = 0.01
FAITHFULNESS = ("(F(C) - F(ablated)) / (F(clean) - F(ablated)), a ratio of means over prompts; "
                "F(ablated): every edge ablated as 'ablation' says")

CircuitLike = Circuit | Iterable[Edge | str]


@dataclass(frozen=True)
class CircuitMetrics:
    """The metric per prompt of circuit runs on one batch of clean/corrupted pairs.

    ``per_prompt``: ``[n_circuits, batch]`` ``F(circuit)``; ``clean``: ``[batch]``;
    ``corrupted``: ``[batch]`` the baseline ``F(ablated)``, every edge ablated as ``ablation``
    says (for ``"corrupted"`` the corrupted run); ``units``: one id per prompt pair (identical
    pairs are one bootstrap unit); ``ablation_seed`` seeds the ``"resample"`` derangement.
    """

    circuits: tuple[Circuit, ...]
    per_prompt: np.ndarray
    clean: np.ndarray
    corrupted: np.ndarray
    units: tuple[Hashable, ...]
    metric: str
    ablation: str = "corrupted"
    ablation_seed: int = 0

    @property
    def ablation_text(self) -> str:
        """``"<kind>: <sentence>"``, as evidence settings record the ablation."""
        return describe_ablation(self.ablation, self.ablation_seed)

    @property
    def gap(self) -> float:
        """``mean(F(clean) - F(ablated))``, or a clear error when it is (nearly) zero."""
        return check_gap(self.clean, self.corrupted)

    def recovery(self, index: int) -> RatioOfMeans:
        """Faithfulness of circuit ``index`` as the engine's ratio of means over prompts."""
        return RatioOfMeans(self.per_prompt[index] - self.corrupted, self.clean - self.corrupted,
                            units=self.units)

    def faithfulness(self) -> np.ndarray:
        """``[n_circuits]`` point estimates of :meth:`recovery`."""
        self.gap  # noqa: B018 - refuses a zero gap before dividing by it
        return np.array([self.recovery(i).estimate() for i in range(len(self.circuits))])


def as_circuit(graph: EdgeGraph, circuit: CircuitLike) -> Circuit:
    """``circuit`` (a :class:`Circuit` or edge names) as a circuit of ``graph``."""
    if isinstance(circuit, Circuit):
        if circuit.graph != graph:
            raise MiAssertInputError(f"the circuit is a circuit of graph {circuit.graph.describe()}"
                                     f", but the model's graph is {graph.describe()}")
        return circuit
    return Circuit.from_names(graph, circuit)


def non_empty_circuit(graph: EdgeGraph, circuit: CircuitLike) -> Circuit:
    """``circuit`` as a circuit of ``graph``, refused when it has no edges."""
    out = as_circuit(graph, circuit)
    if not out.edges:
        raise MiAssertInputError("the circuit has no edges; give at least one edge name, e.g. "
                                 "'L1H0->logits'")
    return out


def claimed_circuit(graph: EdgeGraph, circuit: CircuitLike) -> Circuit:
    """The circuit a claim is about: non-empty, and with an edge into the logits."""
    out = non_empty_circuit(graph, circuit)
    if not any(e.receiver.kind == "logits" for e in out.edges):
        raise MiAssertInputError(
            f"circuit {out.names} is not connected to the logits: none of its edges ends in "
            "'->logits', so no circuit path carries a signal to the output; add the edge(s) "
            "from its last node(s) into the logits, e.g. 'L1H0->logits'")
    return out


def _prompt_units(clean: torch.Tensor, corrupted: torch.Tensor) -> tuple[Hashable, ...]:
    return tuple(zip(map(tuple, clean.tolist()), map(tuple, corrupted.tolist()), strict=True))


def measure_circuits(model: Any, circuits: Sequence[CircuitLike], clean: Any, corrupted: Any = None,
                     metric: Any = "logit_diff", *, max_batch: int | None = None,
                     ablation: AblationKind = "corrupted", ablation_seed: int = 0) -> CircuitMetrics:
    """``F(circuit)`` per prompt for each circuit (module docstring), all stacked in a few
    forward passes; inputs as :func:`~mi_assert.edges.edge_sweep` takes them.

    ``ablation``: what the edges outside a circuit carry, ``"corrupted"``, ``"mean"`` or
    ``"resample"`` (:mod:`mi_assert.edges.ablation`); ``ablation_seed`` seeds the resample
    derangement."""
    kind = check_ablation(ablation)
    handle = resolve_model(model)
    tl_model = hooked_transformer(handle)
    clean_t, corrupted_t, metric_fn = _resolve_inputs(handle, clean, corrupted, metric)
    graph = EdgeGraph.from_handle(handle)
    parsed = tuple(as_circuit(graph, c) for c in circuits)
    batch, n_pos = corrupted_t.shape
    check_ablation(kind, batch)
    with eval_mode([tl_model]), torch.no_grad():
        clean_run = record_run(tl_model, graph, clean_t)
        ablated = ablated_run(record_run(tl_model, graph, corrupted_t), kind, ablation_seed)
        embed_delta = clean_run.outputs[0] - ablated.outputs[0]
        readout = MetricReadout(tl_model, metric_fn, batch)
        rows = rows_per_forward(tl_model, batch, n_pos, readout.full_logits, max_batch)
        per_prompt = circuit_runs(tl_model, graph, parsed, embed_delta, ablated, readout, rows)
        # read the baselines exactly as the circuit runs are read: an empty circuit's F is
        # then bit-for-bit F(ablated)
        clean_pp = readout(clean_run.final_resid)[0].float().cpu()
        ablated_pp = readout(ablated.final_resid)[0].float().cpu()
    check_finite("circuit metrics", per_prompt)
    return CircuitMetrics(circuits=parsed, per_prompt=per_prompt.double().numpy(),
                          clean=clean_pp.double().numpy(), corrupted=ablated_pp.double().numpy(),
                          units=_prompt_units(clean_t, corrupted_t), metric=metric_name(metric_fn),
                          ablation=kind, ablation_seed=int(ablation_seed))


def draw_random_circuits(graph: EdgeGraph, size: int, n_draws: int, seed: int) -> list[Circuit]:
    """``n_draws`` i.i.d. circuits, each a uniform random ``size``-subset of the graph's edges."""
    gen = torch.Generator().manual_seed(int(seed))
    return [Circuit(graph, tuple(graph.edges[int(i)]
                                 for i in torch.randperm(graph.n_edges, generator=gen)[:size]))
            for _ in range(n_draws)]


def _check_open_unit(value: Any, name: str) -> float:
    ok = (not isinstance(value, bool) and isinstance(value, (int, float, np.floating))
          and 0 < float(value) < 1)
    if not ok:
        raise MiAssertInputError(f"{name} must be a number strictly between 0 and 1; got {value!r}")
    return float(value)


def _check_positive(value: Any, name: str, *, strict: bool = True) -> float:
    ok = (not isinstance(value, bool) and isinstance(value, (int, float, np.floating))
          and math.isfinite(float(value)) and (float(value) > 0 if strict else float(value) >= 0))
    if not ok:
        raise MiAssertInputError(f"{name} must be a finite number {'>' if strict else '>='} 0; "
                                 f"got {value!r}")
    return float(value)


def _check_n_random(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < MIN_RANDOM:
        raise MiAssertInputError(
            f"n_random must be an int >= {MIN_RANDOM} (random circuits to compare against: with "
            f"fewer even beating all of them bounds P(beat) below 0.9); got {value!r}")
    return int(value)


def _kind_note(measured: CircuitMetrics, sep: str = ",") -> str:
    """The ablation kind for a claim's text; empty for the default, ``"corrupted"``."""
    return "" if measured.ablation == "corrupted" else f"{sep} {measured.ablation} ablation"


def _label(circuit: Circuit) -> str:
    shown = ", ".join(circuit.names[:4]) + (", ..." if len(circuit) > 4 else "")
    return "{" + shown + "}"


def _settings(circuit: Circuit, measured: CircuitMetrics) -> dict[str, Any]:
    return {"ablation": measured.ablation_text, "circuit": circuit.names, "n_edges": len(circuit),
            "graph_edges": circuit.graph.n_edges, "metric": measured.metric,
            "n_prompts": int(measured.clean.shape[0]), "faithfulness": FAITHFULNESS}


@dataclass(frozen=True)
class _RandomComparison:
    """A circuit's value against random same-size edge sets: ``own`` vs ``drawn`` (one per
    random set), ``beats`` = 1 where the circuit wins by more than the tie tolerance."""

    handle: Any
    graph: EdgeGraph
    claimed: Circuit
    measured: CircuitMetrics
    own: float
    drawn: np.ndarray
    beats: np.ndarray
    q: float
    n_random: int
    tie_tolerance: float
    seed: int

    def claim_spec(self, *, claim: str, metric: str, value: str, xlabel: str, title: str,
                   settings: dict[str, Any], details: dict[str, Any]) -> ClaimSpec:
        """"The circuit wins against a random same-size set with probability > q", on these
        wins, with what sufficiency and necessity share: the settings of the draws, the wins,
        the quantiles of the random sets' ``value``, its histogram against the circuit's, and
        the circuit drawn."""
        q50, q90, q99 = np.quantile(self.drawn, [0.5, 0.9, 0.99])
        return ClaimSpec(
            claim=claim, metric=metric,
            samples={int(self.seed): Mean(self.beats, unit="random circuits")},
            threshold=self.q, alternative="greater", value_range=(0.0, 1.0),
            unit="random circuits", hist_figure=False,
            settings={**_settings(self.claimed, self.measured), "n_random": self.n_random,
                      "q": self.q, "seed": self.seed,
                      "draws": "uniform same-size subsets of all graph edges (may include "
                               "circuit edges), i.i.d., torch generator seeded with seed",
                      **settings},
            model_info=self.handle.describe(),
            details={f"circuit_{value}": round(self.own, 4), "wins": int(self.beats.sum()),
                     f"random_{value}": f"median {q50:.3f}, q90 {q90:.3f}, q99 {q99:.3f}, max "
                                        f"{float(self.drawn.max()):.3f}", **details},
            figures={f"random_{value}": {
                "kind": "hist", "data": [self.drawn], "labels": [f"seed {self.seed}"],
                "xlabel": xlabel, "ylabel": "draws", "title": title, "threshold": self.own},
                "circuit": circuit_figure(self.graph, self.claimed)},
        )


def _against_random(model: Any, circuit: CircuitLike, clean: Any, corrupted: Any, metric: Any,
                    *, n_random: int, q: float, seed: int, tie_tolerance: float,
                    max_batch: int | None, knockout: bool, ablation: AblationKind,
                    ablation_seed: int) -> _RandomComparison:
    """Validate, draw the random sets, run them with the circuit. Sufficiency (``knockout``
    False) compares faithfulness of the circuits themselves; partial necessity compares the
    loss (1 - faithfulness) of the full model with each set knocked out."""
    check_ablation(ablation)
    q = _check_open_unit(q, "q")
    n_random = _check_n_random(n_random)
    tie_tolerance = _check_positive(tie_tolerance, "tie_tolerance", strict=False)
    handle = resolve_model(model)
    graph = EdgeGraph.from_handle(handle)
    claimed = non_empty_circuit(graph, circuit) if knockout else claimed_circuit(graph, circuit)
    sets = [claimed, *draw_random_circuits(graph, len(claimed), n_random, seed)]
    measured = measure_circuits(handle, [knocked_out(c) for c in sets] if knockout else sets,
                                clean, corrupted, metric, max_batch=max_batch, ablation=ablation,
                                ablation_seed=ablation_seed)
    # knockout: the share of the clean-corrupted gap the knockout costs
    values = 1.0 - measured.faithfulness() if knockout else measured.faithfulness()
    own, drawn = float(values[0]), values[1:]
    beats = (own > drawn + tie_tolerance).astype(np.float64)
    return _RandomComparison(handle, graph, claimed, measured, own, drawn, beats, q, n_random,
                             tie_tolerance, seed)


def check_circuit_beats_random(
    model: Any,
    circuit: CircuitLike,
    clean: Any,
    corrupted: Any = None,
    metric: Any = "logit_diff",
    *,
    n_random: int = 100,
    q: float = 0.9,
    seed: int = 0,
    alpha: float = 0.05,
    tie_tolerance: float = TIE_TOLERANCE,
    max_batch: int | None = None,
    ablation: AblationKind = "corrupted",
    ablation_seed: int = 0,
) -> Evidence:
    """Claim: the circuit's faithfulness beats that of a random circuit with as many edges
    with probability > ``q`` (module docstring). ``seed`` seeds the draws; ``tie_tolerance``:
    faithfulness differences up to it are ties, which count against the circuit;
    ``ablation`` / ``ablation_seed``: what edges outside a circuit carry
    (:func:`measure_circuits`)."""
    cmp = _against_random(model, circuit, clean, corrupted, metric, n_random=n_random, q=q,
                          seed=seed, tie_tolerance=tie_tolerance, max_batch=max_batch,
                          knockout=False, ablation=ablation, ablation_seed=ablation_seed)
    claimed = cmp.claimed
    return cmp.claim_spec(
        claim=f"circuit {_label(claimed)} beats > {cmp.q:g} of random {len(claimed)}-edge "
              f"circuits (faithfulness{_kind_note(cmp.measured)})",
        metric="fraction of random same-size circuits beaten", value="faithfulness",
        xlabel="faithfulness of a random same-size circuit",
        title=f"random {len(claimed)}-edge circuits vs {_label(claimed)} (line: circuit)",
        settings={"beats": f"faithfulness greater by more than {cmp.tie_tolerance:g} (ties "
                           "count against)"},
        details={},
    ).evaluate(alpha)


assert_circuit_beats_random = asserting(check_circuit_beats_random)


def knocked_out(circuit: Circuit) -> Circuit:
    """The full model without ``circuit``: every other edge of its graph."""
    drop = set(circuit.edges)
    return Circuit(circuit.graph, tuple(e for e in circuit.graph.edges if e not in drop))


def check_circuit_necessary(
    model: Any,
    circuit: CircuitLike,
    clean: Any,
    corrupted: Any = None,
    metric: Any = "logit_diff",
    *,
    n_random: int = 100,
    q: float = NECESSITY_Q,
    seed: int = 0,
    alpha: float = 0.05,
    tie_tolerance: float = NECESSITY_TIE_TOLERANCE,
    max_batch: int | None = None,
    ablation: AblationKind = "corrupted",
    ablation_seed: int = 0,
) -> Evidence:
    """Claim (partial necessity): knocking the circuit's edges out of the full model lowers
    faithfulness more than knocking out a random edge set of the same size does, with
    probability > ``q`` (module docstring). The random sets are drawn as
    :func:`check_circuit_beats_random` draws them (``seed``); a difference up to
    ``tie_tolerance`` is a tie, which counts against the circuit; ``ablation`` /
    ``ablation_seed``: what knocked-out edges carry (:func:`measure_circuits`)."""
    cmp = _against_random(model, circuit, clean, corrupted, metric, n_random=n_random, q=q,
                          seed=seed, tie_tolerance=tie_tolerance, max_batch=max_batch,
                          knockout=True, ablation=ablation, ablation_seed=ablation_seed)
    claimed, graph = cmp.claimed, cmp.graph
    overlap_free = math.comb(graph.n_edges - len(claimed), len(claimed)) / math.comb(
        graph.n_edges, len(claimed))
    return cmp.claim_spec(
        claim=f"knocking out circuit {_label(claimed)} costs more than knocking out random "
              f"{len(claimed)}-edge sets, with probability > {cmp.q:g}"
              f"{_kind_note(cmp.measured, ';')}",
        metric="fraction of random same-size knockouts the circuit's knockout beats",
        value="knockout_loss", xlabel="loss when a random same-size edge set is knocked out",
        title=f"knockouts of random {len(claimed)}-edge sets vs {_label(claimed)} (line: "
              "circuit)",
        settings={"knockout": "every graph edge except the set carries the clean signal; the "
                              f"set's edges carry the ablated one ({cmp.measured.ablation})",
                  "loss": "1 - faithfulness of the model without the set",
                  "beats": f"loss greater by more than {cmp.tie_tolerance:g} (ties count "
                           "against)"},
        details={"draws_missing_the_circuit": round(overlap_free, 4)},
    ).evaluate(alpha)


assert_circuit_necessary = asserting(check_circuit_necessary)


def _one_sided(circuit: Circuit, d: np.ndarray, units: Sequence[Hashable], bound: float,
               alternative: str) -> ClaimSpec:
    sign = ">" if alternative == "greater" else "<"
    return ClaimSpec(
        claim=f"circuit {_label(circuit)}: mean (F(C) - F(clean)) / |gap| {sign} {bound:g}",
        metric="(F(C) - F(clean)) / |mean(F(clean) - F(ablated))|",
        samples={0: Mean(d, units=units)}, threshold=bound,
        alternative=alternative,  # type: ignore[arg-type]
        hist_figure=False)


def check_circuit_equivalent(
    model: Any,
    circuit: CircuitLike,
    clean: Any,
    corrupted: Any = None,
    metric: Any = "logit_diff",
    *,
    epsilon: float = 0.1,
    alpha: float = 0.05,
    max_batch: int | None = None,
    ablation: AblationKind = "corrupted",
    ablation_seed: int = 0,
) -> Evidence:
    """Claim: the circuit and the full model agree on the metric within ``epsilon`` of the
    clean-ablated gap, by two one-sided tests at ``alpha`` (module docstring); ``ablation`` /
    ``ablation_seed`` as :func:`measure_circuits` takes them."""
    check_ablation(ablation)
    epsilon = _check_positive(epsilon, "epsilon")
    handle = resolve_model(model)
    graph = EdgeGraph.from_handle(handle)
    claimed = claimed_circuit(graph, circuit)
    measured = measure_circuits(handle, [claimed], clean, corrupted, metric, max_batch=max_batch,
                                ablation=ablation, ablation_seed=ablation_seed)
    d = (measured.per_prompt[0] - measured.clean) / abs(measured.gap)
    members = [_one_sided(claimed, d, measured.units, -epsilon, "greater"),
               _one_sided(claimed, d, measured.units, epsilon, "less")]
    return all_of(
        members,
        claim=f"circuit {_label(claimed)} is equivalent to the model within ±{epsilon:g} of "
              f"the clean-{'corrupted' if measured.ablation == 'corrupted' else 'ablated'} gap "
              f"(TOST{_kind_note(measured)})",
        alpha=alpha,
        settings={**_settings(claimed, measured), "epsilon": epsilon,
                  "statistic": "per prompt d = (F(C) - F(clean)) / |mean(F(clean) - "
                               "F(ablated))|; mean d > -epsilon and mean d < +epsilon, each "
                               "at alpha (two one-sided tests)"},
        model_info=handle.describe(),
        details={"faithfulness": round(float(measured.faithfulness()[0]), 4),
                 "mean_d": round(float(np.mean(d)), 4), "gap": round(measured.gap, 4)},
        figures={"circuit": circuit_figure(graph, claimed)},
    )


assert_circuit_equivalent = asserting(check_circuit_equivalent)


__all__ = ["ABLATION", "CircuitMetrics", "assert_circuit_beats_random",
           "assert_circuit_equivalent", "assert_circuit_necessary", "check_circuit_beats_random",
           "check_circuit_equivalent", "check_circuit_necessary", "draw_random_circuits",
           "knocked_out", "measure_circuits"]
