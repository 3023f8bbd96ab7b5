"""``find_heads``: rank every head of a model for a role, on *fit* prompts.

Discovery and confirmation use disjoint prompts: ``find_heads`` draws from ``seed`` (the fit
split), the ``assert_*`` helpers from ``seed + HELDOUT_OFFSET`` (held-out prompts and
vocabularies), so a suite can pick heads with ``find_heads`` and then assert on data the choice
never saw.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from mi_assert.errors import MiAssertInputError
from mi_assert.heads.assertions import check_role
from mi_assert.heads.measure import ROLE_INFO, measure_role
from mi_assert.heads.names import head_name
from mi_assert.stats.evidence import Evidence
from mi_assert.stats.options import check_count


@dataclass(frozen=True)
class HeadScore:
    """One head's mean role score on the discovery prompts."""

    layer: int
    head: int
    score: float

    @property
    def name(self) -> str:
        return head_name(self.layer, self.head)

    def __iter__(self) -> Iterator[Any]:  # unpacks as (layer, head, score)
        return iter((self.layer, self.head, self.score))

    def __repr__(self) -> str:
        return f"{self.name}={self.score:.3f}"


class HeadRanking(list):
    """A list of :class:`HeadScore`, best first, that prints as a table."""

    def __init__(self, items: list[HeadScore], role: str, metric: str, settings: dict[str, Any]) -> None:
        super().__init__(items)
        self.role = role
        self.metric = metric
        self.settings = settings

    @property
    def heads(self) -> list[tuple[int, int]]:
        """``[(layer, head), ...]`` in rank order (ready for an ``assert_*`` call)."""
        return [(s.layer, s.head) for s in self]

    def confirm(self, model: Any, **options: Any) -> Evidence:
        """Check the ranked heads on held-out prompts without raising: one Holm family
        (each head a separate discovery; a single head is a single claim)."""
        __tracebackhide__ = True
        if not self:
            raise MiAssertInputError("the ranking is empty: nothing to confirm")
        return check_role(model, self.role, self.heads, **options)

    def table(self) -> str:
        lines = [f"top {len(self)} heads for {self.role} ({self.metric}, fit prompts)",
                 "  rank  head     score"]
        lines += [f"  {i + 1:<5} {s.name:<8} {s.score:.3f}" for i, s in enumerate(self)]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"HeadRanking({self.role}: {', '.join(repr(s) for s in self)})"

    def __str__(self) -> str:
        return self.table()


def find_heads(model: Any, role: str, top_k: int | None = 5, prompts: Any = None, seed: int = 0,
               **options: Any) -> HeadRanking:
    """Rank all heads for ``role`` by mean score on fit prompts (best first).

    ``role``: induction | previous_token | duplicate_token | bos | copying (TL's
    ``*_head`` names are accepted too). ``prompts``: your own tokens / strings instead of the
    generated fit prompts. ``seed``: the fit seed (held-out assertions use
    ``seed + HELDOUT_OFFSET``). ``top_k=None`` returns every head. Other options as for the
    assertions (``n_prompts``, ``repeat_lens``, ``batch_size``, ...), validated the same way.
    All heads are scored from one batched forward pass per prompt batch, caching only the
    attention patterns. A ranking is a description of the fit prompts, not a claim: it has no
    bound, so confirm a pick on held-out prompts with :meth:`HeadRanking.confirm` or an
    ``assert_*`` helper (several heads are one Holm family there).
    """
    if top_k is not None:
        top_k = check_count(top_k, "top_k (or None for every head)")
    options = {"seeds": (seed,), **options}
    if prompts is not None:
        options["prompts"] = prompts
    measured = measure_role(model, role, split="fit", **options)
    ranking = [HeadScore(layer, head, score) for layer, head, score in measured.ranking()]
    if top_k is not None:
        ranking = ranking[:top_k]
    return HeadRanking(ranking, measured.role, ROLE_INFO[measured.role].metric, measured.settings)
