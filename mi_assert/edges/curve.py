"""Faithfulness curves: how much of the clean metric the top-k edges of a ranking restore.

For each ``k`` of a grid, the circuit of the ranking's first ``k`` edges is run
(:func:`~mi_assert.edges.claims.measure_circuits`, denoising, the other edges ablated as
``ablation`` says) and its faithfulness ``(F(C_k) - F(ablated)) / (F(clean) - F(ablated))``
(ratio of means over prompts) read off.
The same is done for random orderings of the same edges. The area under a curve is the
trapezoid rule over the fraction of edges kept, ``x = k / n_edges``, divided by the grid's
span (1 on the default grid, which runs from 0 to ``n_edges``): 1 = the first edges already
restore everything, 0 = nothing is restored until the last one.

The AUC claim is a ratio of means over prompts: per prompt the numerator is
``Σ_j w_j (F(C_kj) - F(ablated))`` with ``w_j`` the trapezoid weights, the denominator
``F(clean) - F(ablated)``; their ratio of means is exactly the normalised AUC, so the
engine's bootstrap resamples prompts, not grid points.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from mi_assert.edges.ablation import AblationKind, check_ablation
from mi_assert.edges.circuit import Circuit
from mi_assert.edges.claims import FAITHFULNESS, CircuitMetrics, measure_circuits
from mi_assert.edges.drawing import circuit_figure
from mi_assert.edges.graph import Edge, EdgeGraph
from mi_assert.edges.scores import EdgeScores
from mi_assert.errors import MiAssertInputError
from mi_assert.loading import resolve_model
from mi_assert.stats import ClaimSpec, Evidence, RatioOfMeans
from mi_assert.verdict import asserting

#: most points of the default k grid
MAX_GRID_POINTS = 24
#: quantiles of the random orderings reported with a curve
RANDOM_QUANTILES = (0.05, 0.5, 0.95)
#: the circuit a curve's figure draws: the ranking's smallest top-k reaching this faithfulness
DRAWN_FAITHFULNESS = 0.9

Ranking = EdgeScores | Sequence[Edge | str]


def default_ks(n_edges: int, max_points: int = MAX_GRID_POINTS) -> tuple[int, ...]:
    """0, then about ``max_points - 1`` geometrically spaced ``k`` up to ``n_edges``: dense
    where few edges are kept, where a good ranking's curve rises."""
    if n_edges < 1:
        return (0,)
    spaced = np.geomspace(1, n_edges, num=max_points - 1)
    return tuple(sorted({0, n_edges, *(int(round(k)) for k in spaced)}))


def trapezoid_weights(ks: Sequence[int], n_edges: int) -> np.ndarray:
    """Weights ``w_j`` with ``Σ_j w_j y_j`` = the trapezoid area under ``y`` over ``x = k /
    n_edges``, divided by the span of ``x``."""
    x = np.asarray(ks, dtype=np.float64) / n_edges
    w = np.zeros_like(x)
    steps = np.diff(x)
    w[:-1] += steps / 2
    w[1:] += steps / 2
    return w / (x[-1] - x[0])


def ranked_edges(graph: EdgeGraph, ranking: Ranking, absolute: bool = True) -> tuple[Edge, ...]:
    """The edges of ``ranking`` best first: an :class:`EdgeScores` by score (``absolute``: by
    ``|score|``), or an explicit ordering of edges or edge names."""
    if isinstance(ranking, EdgeScores):
        if ranking.graph != graph:
            raise MiAssertInputError(f"the scores are for graph {ranking.graph.describe()}, but "
                                     f"the model's graph is {graph.describe()}")
        return tuple(edge for edge, _ in ranking.top(len(ranking), absolute=absolute))
    if isinstance(ranking, (str, Edge)) or not isinstance(ranking, Sequence):
        raise MiAssertInputError(
            f"ranking must be EdgeScores or a sequence of edges / edge names, best first; got "
            f"{type(ranking).__name__}")
    edges = tuple(graph.edge(e) for e in ranking)
    if not edges:
        raise MiAssertInputError("the ranking has no edges; give EdgeScores or at least one edge")
    if len(set(edges)) != len(edges):
        twice = sorted({e.name for e in edges if edges.count(e) > 1})
        raise MiAssertInputError(f"the ranking lists edge(s) {', '.join(twice)} more than once; "
                                 "list each edge once")
    return edges


def checked_ks(ks: Sequence[int] | None, n_edges: int) -> tuple[int, ...]:
    """``ks`` as ints: at least two, strictly increasing, each within ``0..n_edges``."""
    if ks is None:
        return default_ks(n_edges)
    out = tuple(ks)
    ints = all(isinstance(k, (int, np.integer)) and not isinstance(k, bool) for k in out)
    if not ints or len(out) < 2:
        raise MiAssertInputError(f"ks must be at least two ints (edges kept); got {ks!r}")
    if any(k < 0 or k > n_edges for k in out):
        raise MiAssertInputError(f"ks must lie within 0..{n_edges} (the ranking's edges); got "
                                 f"{list(out)}")
    if any(b <= a for a, b in zip(out, out[1:], strict=False)):
        raise MiAssertInputError(f"ks must be strictly increasing; got {list(out)}")
    return tuple(int(k) for k in out)


def _check_n_orderings(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise MiAssertInputError(f"n_random_orderings must be an int >= 1; got {value!r}")
    return int(value)


def random_orderings(edges: Sequence[Edge], n: int, seed: int) -> list[tuple[Edge, ...]]:
    """``n`` uniform random permutations of ``edges`` (torch generator seeded with ``seed``)."""
    gen = torch.Generator().manual_seed(int(seed))
    return [tuple(edges[int(i)] for i in torch.randperm(len(edges), generator=gen))
            for _ in range(n)]


def prefix_circuits(graph: EdgeGraph, ordering: Sequence[Edge], ks: Sequence[int]) -> list[Circuit]:
    return [Circuit(graph, tuple(ordering[:k])) for k in ks]


@dataclass(frozen=True)
class FaithfulnessCurve:
    """Faithfulness of the top-``k`` circuits of a ranking and of random orderings.

    ``faithfulness``: ``[len(ks)]``; ``random_faithfulness``: ``[n_random, len(ks)]``;
    ``auc`` / ``random_auc``: normalised areas (module docstring); ``measured``: the circuit
    runs, ranking circuits first (``len(ks)`` of them), then each random ordering's.
    """

    edges: tuple[Edge, ...]
    ks: tuple[int, ...]
    faithfulness: np.ndarray
    random_faithfulness: np.ndarray
    auc: float
    random_auc: np.ndarray
    seed: int
    measured: CircuitMetrics = field(repr=False)

    @property
    def n_edges(self) -> int:
        return len(self.edges)

    @property
    def fractions(self) -> np.ndarray:
        return np.asarray(self.ks, dtype=np.float64) / self.n_edges

    @property
    def random_auc_mean(self) -> float:
        return float(self.random_auc.mean())

    def random_auc_quantiles(self) -> dict[str, float]:
        values = np.quantile(self.random_auc, RANDOM_QUANTILES)
        return {f"q{round(100 * q):02d}": float(v) for q, v in zip(RANDOM_QUANTILES, values, strict=True)}

    @property
    def auc_percentile(self) -> float:
        """Share of random orderings whose AUC is below the ranking's (ties count half)."""
        below = np.mean(self.random_auc < self.auc)
        ties = np.mean(self.random_auc == self.auc)
        return float(below + ties / 2)

    def auc_statistic(self) -> RatioOfMeans:
        """The ranking's AUC as a ratio of means over prompts (module docstring)."""
        m = self.measured
        weights = trapezoid_weights(self.ks, self.n_edges)
        restored = m.per_prompt[: len(self.ks)] - m.corrupted  # [len(ks), batch]
        return RatioOfMeans(weights @ restored, m.clean - m.corrupted, units=m.units)

    def to_dict(self) -> dict[str, Any]:
        return {"n_edges": self.n_edges, "ks": list(self.ks),
                "fractions": self.fractions.tolist(),
                "faithfulness": self.faithfulness.tolist(), "auc": self.auc,
                "n_random_orderings": int(self.random_auc.size), "seed": self.seed,
                "random_auc_mean": self.random_auc_mean,
                "random_auc_quantiles": self.random_auc_quantiles(),
                "auc_percentile": self.auc_percentile,
                "random_faithfulness_mean": self.random_faithfulness.mean(axis=0).tolist(),
                "metric": self.measured.metric, "ablation": self.measured.ablation_text}

    def drawn_k(self, level: float = DRAWN_FAITHFULNESS) -> int:
        """The smallest ``k`` of the grid whose top-k circuit reaches faithfulness ``level``
        (the largest ``k`` when none does)."""
        reached = [k for k, f in zip(self.ks, self.faithfulness.tolist(), strict=True) if f >= level]
        return reached[0] if reached else self.ks[-1]

    def circuit_figure(self, graph: EdgeGraph, scores: EdgeScores | None = None) -> dict[str, Any]:
        """A ``"circuit"`` figure (:func:`~mi_assert.edges.drawing.circuit_figure`) of the
        ranking's top :meth:`drawn_k` edges."""
        k = self.drawn_k()
        at = self.faithfulness[self.ks.index(k)]
        return circuit_figure(
            graph, Circuit(graph, self.edges[:k]), scores,
            title=f"top {k} of {self.n_edges} ranked edges (faithfulness {at:.3f}; the smallest "
                  f"k on the grid reaching {DRAWN_FAITHFULNESS:g}, else the largest)")

    def figure(self) -> dict[str, Any]:
        """A ``"line"`` figure spec (:mod:`mi_assert.report.figures`): the ranking's curve,
        the random orderings' 5-95% band; ``random_mean`` rides along for readers of the JSON
        (the drawer plots one series)."""
        low, high = np.quantile(self.random_faithfulness, [0.05, 0.95], axis=0)
        return {"kind": "line",
                "data": {"x": self.fractions.tolist(), "y": self.faithfulness.tolist(),
                         "low": low.tolist(), "high": high.tolist(),
                         "random_mean": self.random_faithfulness.mean(axis=0).tolist()},
                "xlabel": "fraction of edges kept (k / n_edges)", "ylabel": "faithfulness",
                "title": f"top-k edges: AUC {self.auc:.3f} (band: {self.random_auc.size} random "
                         f"orderings, mean AUC {self.random_auc_mean:.3f})"}


def faithfulness_curve(
    model: Any,
    scores_or_ranking: Ranking,
    clean: Any,
    corrupted: Any = None,
    metric: Any = "logit_diff",
    *,
    ks: Sequence[int] | None = None,
    n_random_orderings: int = 20,
    seed: int = 0,
    absolute: bool = True,
    max_batch: int | None = None,
    ablation: AblationKind = "corrupted",
    ablation_seed: int = 0,
) -> FaithfulnessCurve:
    """Faithfulness of the top-``k`` edges of a ranking for ``k`` in ``ks``, and of
    ``n_random_orderings`` seeded random orderings of the same edges (module docstring).

    ``scores_or_ranking``: :class:`EdgeScores` (ranked by ``|score|``, or by score with
    ``absolute=False``) or edges / edge names best first; ``ks``: strictly increasing within
    ``0..n_edges`` (default: :func:`default_ks`). Inputs, ``ablation`` and ``ablation_seed`` as
    :func:`measure_circuits` takes them.
    """
    check_ablation(ablation)
    n_orderings = _check_n_orderings(n_random_orderings)
    handle = resolve_model(model)
    graph = EdgeGraph.from_handle(handle)
    edges = ranked_edges(graph, scores_or_ranking, absolute)
    grid = checked_ks(ks, len(edges))
    orderings = [edges, *random_orderings(edges, n_orderings, seed)]
    circuits = [c for ordering in orderings for c in prefix_circuits(graph, ordering, grid)]
    measured = measure_circuits(handle, circuits, clean, corrupted, metric, max_batch=max_batch,
                                ablation=ablation, ablation_seed=ablation_seed)
    curves = measured.faithfulness().reshape(len(orderings), len(grid))
    areas = curves @ trapezoid_weights(grid, len(edges))
    return FaithfulnessCurve(edges=edges, ks=grid, faithfulness=curves[0],
                             random_faithfulness=curves[1:], auc=float(areas[0]),
                             random_auc=areas[1:], seed=int(seed), measured=measured)


def _check_min_auc(value: Any) -> float:
    ok = (not isinstance(value, bool) and isinstance(value, (int, float, np.floating))
          and 0 < float(value) < 1)
    if not ok:
        raise MiAssertInputError(f"min_auc must be a number strictly between 0 and 1 (a "
                                 f"normalised area); got {value!r}")
    return float(value)


def check_faithfulness_auc(
    model: Any,
    scores: Ranking,
    clean: Any,
    corrupted: Any = None,
    metric: Any = "logit_diff",
    *,
    min_auc: float,
    alpha: float = 0.05,
    n_random_orderings: int = 100,
    ks: Sequence[int] | None = None,
    seed: int = 0,
    absolute: bool = True,
    max_batch: int | None = None,
    ablation: AblationKind = "corrupted",
    ablation_seed: int = 0,
) -> Evidence:
    """Claim: the area under the ranking's faithfulness curve exceeds ``min_auc``, decided over
    prompts as a ratio of means (module docstring). The random orderings (seeded with
    ``seed``) do not enter the decision; their AUCs are reported alongside. ``ablation`` /
    ``ablation_seed`` as :func:`measure_circuits` takes them."""
    check_ablation(ablation)
    min_auc = _check_min_auc(min_auc)
    handle = resolve_model(model)
    curve = faithfulness_curve(handle, scores, clean, corrupted, metric, ks=ks,
                               n_random_orderings=n_random_orderings, seed=seed,
                               absolute=absolute, max_batch=max_batch, ablation=ablation,
                               ablation_seed=ablation_seed)
    quantiles = curve.random_auc_quantiles()
    return ClaimSpec(
        claim=f"the faithfulness curve of the edge ranking has AUC > {min_auc:g}"
              + ("" if curve.measured.ablation == "corrupted"
                 else f" ({curve.measured.ablation} ablation)"),
        metric="normalised area under faithfulness vs fraction of edges kept",
        samples={0: curve.auc_statistic()},
        threshold=min_auc, alternative="greater", value_range=None, unit="prompts",
        hist_figure=False,
        settings={"ablation": curve.measured.ablation_text, "faithfulness": FAITHFULNESS,
                  "metric": curve.measured.metric, "n_edges": curve.n_edges, "ks": list(curve.ks),
                  "n_prompts": int(curve.measured.clean.shape[0]),
                  "n_random_orderings": int(curve.random_auc.size), "seed": curve.seed,
                  "auc": "trapezoid over k / n_edges, divided by the grid's span; per prompt "
                         "Σ w_k (F(C_k) - F(ablated)) over F(clean) - F(ablated), a ratio "
                         "of means"},
        model_info=handle.describe(),
        details={"auc": round(curve.auc, 4), "random_auc_mean": round(curve.random_auc_mean, 4),
                 "random_auc_quantiles": {k: round(v, 4) for k, v in quantiles.items()},
                 "auc_percentile_among_random": round(curve.auc_percentile, 4),
                 "top_edges": [e.name for e in curve.edges[:5]]},
        figures={"faithfulness_curve": curve.figure(),
                 "circuit": curve.circuit_figure(
                     EdgeGraph.from_handle(handle),
                     scores if isinstance(scores, EdgeScores) else None)},
    ).evaluate(alpha)


assert_faithfulness_auc = asserting(check_faithfulness_auc)


__all__ = ["FaithfulnessCurve", "assert_faithfulness_auc", "check_faithfulness_auc",
           "default_ks", "faithfulness_curve"]
