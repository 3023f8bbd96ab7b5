"""The result of an edge sweep: one score per edge, and per prompt for the claims' bootstrap."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from jaxtyping import Float
from torch import Tensor

from mi_assert.edges.graph import Edge, EdgeGraph
from mi_assert.errors import MiAssertInputError, suggest

#: one score per edge, aligned with ``EdgeScores.edges``
EdgeValues = Float[Tensor, "n_edges"]
#: one score per edge and prompt
EdgePromptValues = Float[Tensor, "n_edges batch"]


@dataclass
class EdgeScores:
    """Edge scores in metric units: ``metric(edge patched) - metric(corrupted)``.

    ``values``: ``[n_edges]`` mean over prompts, aligned with :attr:`edges` (``graph.edges``
    unless the sweep was given a subset); ``per_prompt``: ``[n_edges, batch]``;
    ``clean_per_prompt`` / ``corrupted_per_prompt``: ``[batch]`` metric of the unpatched runs.
    ``method`` is ``"exact"``, ``"eap"`` (then the values are first-order estimates) or
    ``"eap_ig"`` (integrated-gradient estimates).
    """

    graph: EdgeGraph
    edges: tuple[Edge, ...]
    values: EdgeValues
    per_prompt: EdgePromptValues
    clean_per_prompt: Tensor
    corrupted_per_prompt: Tensor
    method: str
    metric: str
    seconds: float = 0.0
    #: what computed them: "kernel" (the functional forward) or "hooks" (TransformerLens hooks)
    engine: str = ""

    def __post_init__(self) -> None:
        self._index_of: dict[Edge, int] | None = None  # built on first lookup

    @property
    def _index(self) -> dict[Edge, int]:
        if self._index_of is None:
            self._index_of = {e: i for i, e in enumerate(self.edges)}
        return self._index_of

    def __len__(self) -> int:
        return len(self.edges)

    @property
    def clean_value(self) -> float:
        return float(self.clean_per_prompt.mean())

    @property
    def corrupted_value(self) -> float:
        return float(self.corrupted_per_prompt.mean())

    def index(self, edge: Edge | str) -> int:
        """Position of ``edge`` (an :class:`Edge` or its name) in :attr:`edges`."""
        parsed = self.graph.edge(edge)  # unknown or impossible edges: a clear error
        if parsed not in self._index:
            raise MiAssertInputError(
                f"edge {parsed.name!r} was not scored: this sweep scored {len(self.edges)} of the "
                f"graph's {self.graph.n_edges} edges.{suggest(parsed.name, self.to_dict())}")
        return self._index[parsed]

    def score(self, edge: Edge | str) -> float:
        """Mean score of one edge over prompts."""
        return float(self.values[self.index(edge)])

    def prompt_scores(self, edge: Edge | str) -> Tensor:
        """Per-prompt scores of one edge: ``[batch]``."""
        return self.per_prompt[self.index(edge)]

    def top(self, k: int = 10, absolute: bool = True) -> list[tuple[Edge, float]]:
        """The ``k`` edges with the largest scores (by absolute value unless ``absolute=False``),
        largest first; ties keep graph order."""
        if not isinstance(k, int) or isinstance(k, bool) or k < 0:
            raise MiAssertInputError(f"top(k): k must be an int >= 0; got {k!r}")
        key = self.values.abs() if absolute else self.values
        order = torch.sort(key, descending=True, stable=True).indices[:k]
        return [(self.edges[int(i)], float(self.values[int(i)])) for i in order]

    def normalised(self) -> EdgeValues:
        """``score / (clean - corrupted)``: 1 = this edge alone recovers the clean metric."""
        gap = self.clean_value - self.corrupted_value
        scale = abs(self.clean_value) + abs(self.corrupted_value)
        if abs(gap) <= max(1e-6, 1e-3 * scale):
            raise MiAssertInputError(
                f"clean ({self.clean_value:.4g}) and corrupted ({self.corrupted_value:.4g}) metrics "
                "are (nearly) equal: normalised edge scores are undefined; use a corruption that "
                "changes the metric")
        return self.values / gap

    def to_dict(self) -> dict[str, float]:
        """``{edge name: mean score}`` in graph order."""
        return {e.name: float(v) for e, v in zip(self.edges, self.values.tolist(), strict=True)}

    def describe(self) -> dict[str, Any]:
        """Plain data for reports: method, metric, baselines, graph shape."""
        return {"method": self.method, "metric": self.metric, "n_edges": len(self.edges),
                "batch": int(self.per_prompt.shape[1]), "clean_value": self.clean_value,
                "corrupted_value": self.corrupted_value, "graph": self.graph.describe(),
                "engine": self.engine, "seconds": self.seconds}

    def __repr__(self) -> str:
        return (f"<EdgeScores {self.method} {self.metric}: {len(self.edges)} edges x "
                f"{self.per_prompt.shape[1]} prompts>")
