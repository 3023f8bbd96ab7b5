"""Which prompts each seed of a causal claim runs on.

* Explicit prompts (token batches, strings, or a :class:`~mi_assert.prompts.PromptSet`): every
  seed uses the same prompts; the seed varies the bootstrap (and any random ablation). Where
  the seeds' rows are then identical the engine merges them into one row (pooled resamples,
  one seed: not replications).
* A generator name (``prompts="ioi"``, ``"induction_pairs"``, ...): each seed draws fresh
  *held-out* prompts, ``make_split(model, name, seed).heldout`` (seed + HELDOUT_OFFSET), so
  the claim is checked on prompts no discovery step saw.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from torch import Tensor

from mi_assert.backends.base import ModelHandle
from mi_assert.causal.metrics import metric_for_prompts
from mi_assert.errors import MiAssertInputError
from mi_assert.prompts import PromptSet, check_aligned
from mi_assert.stats.options import check_int_list


@dataclass
class Draw:
    seed: int
    prompts: PromptSet
    metric: Any
    source: str  # "explicit" or the generator name


def check_seeds(seeds: Sequence[int] | int) -> list[int]:
    """Distinct int seeds (the message every family gives, from :mod:`mi_assert.stats.options`)."""
    out = check_int_list(seeds, "seeds")
    assert out is not None
    return list(out)


def prompt_ids(prompts: PromptSet, *, pairs: bool) -> tuple[Hashable, ...]:
    """One id per prompt: its token row (with ``pairs``, the clean and corrupted rows).

    Identical prompts get identical ids, so the bootstrap resamples them as one unit and the
    claim's ``n`` counts distinct prompts.
    """
    clean = [tuple(row) for row in prompts.clean.tolist()]
    if not pairs or prompts.corrupted is None:
        return tuple(clean)
    corrupted = [tuple(row) for row in prompts.corrupted.tolist()]
    return tuple(zip(clean, corrupted, strict=True))


def check_enough_prompts(draws: Sequence[Draw], min_prompts: int, *, pairs: bool) -> None:
    """Refuse a draw with fewer than ``min_prompts`` distinct prompts (before any forward pass)."""
    for draw in draws:
        n_distinct = len(set(prompt_ids(draw.prompts, pairs=pairs)))
        if n_distinct < min_prompts:
            what = "prompt pairs" if pairs else "prompts"
            dup = (f" ({len(draw.prompts)} given, duplicates merged)"
                   if n_distinct != len(draw.prompts) else "")
            raise MiAssertInputError(
                f"seed {draw.seed}: {n_distinct} distinct {what}{dup}; a confidence bound needs "
                f"at least min_prompts={min_prompts} distinct {what}. Give more distinct "
                "prompts (or lower min_prompts)")


def prompt_draws(
    handle: ModelHandle,
    clean: Any,
    corrupted: Any,
    prompts: Any,
    metric: Any,
    seeds: Sequence[int] | int,
    *,
    need_corrupted: bool,
    prompt_kwargs: Mapping[str, Any] | None = None,
) -> list[Draw]:
    """One :class:`Draw` per seed (see the module docstring)."""
    seed_list = check_seeds(seeds)
    if prompts is not None and clean is not None:
        raise MiAssertInputError("pass prompts=... or clean/corrupted, not both")
    source = prompts if prompts is not None else clean
    if source is None:
        raise MiAssertInputError(
            "no prompts: pass clean (and corrupted) token batches, a PromptSet, or prompts=NAME "
            "of a registered generator (mi_assert.prompts.generators.available_generators())"
        )
    if isinstance(source, str) and corrupted is None and _is_generator(source):
        from mi_assert.prompts.generators import make_split

        if callable(metric):
            raise MiAssertInputError(
                f"with prompts={source!r} each seed draws new prompts (new answer ids), so the "
                "metric must be a name ('logit_diff', 'logprob', 'prob') built per draw, not a "
                "fixed metric object"
            )
        draws = []
        for seed in seed_list:
            ps = make_split(handle, source, seed, **dict(prompt_kwargs or {})).heldout
            if need_corrupted and ps.corrupted is None:
                raise MiAssertInputError(f"generator {source!r} gave no corrupted prompts; patching needs pairs")
            draws.append(Draw(seed, ps, metric_for_prompts(metric, ps, model=handle), source))
        return draws
    if prompt_kwargs:
        raise MiAssertInputError("prompt_kwargs only apply with prompts=NAME of a generator")
    if isinstance(source, PromptSet):
        if corrupted is not None:
            raise MiAssertInputError("pass either a PromptSet, or clean and corrupted token batches, not both")
        ps = source
        clean_t = handle.to_tokens(ps.clean)
        corr_t = None if ps.corrupted is None else handle.to_tokens(ps.corrupted)
        ps = PromptSet(clean_t, corr_t, ps.correct, ps.wrong, dict(ps.meta))
    else:
        clean_t = handle.to_tokens(source)
        corr_t = None if corrupted is None else handle.to_tokens(corrupted)
        check_aligned(clean_t, corr_t)
        ps = PromptSet(clean_t, corr_t, meta={"kind": "explicit"})
    if need_corrupted and ps.corrupted is None:
        raise MiAssertInputError("corrupted prompts are required: pass corrupted= aligned with clean")
    resolved = metric_for_prompts(metric, ps, model=handle)
    return [Draw(seed, ps, resolved, "explicit") for seed in seed_list]


def _is_generator(name: str) -> bool:
    from mi_assert.errors import suggest
    from mi_assert.prompts.generators import available_generators

    names = available_generators()
    if name in names:
        return True
    if " " not in name and not any(ch in name for ch in ".,!?"):
        raise MiAssertInputError(
            f"unknown prompt generator {name!r}.{suggest(name, names)} Allowed: {', '.join(names)} "
            "(or pass token batches / a PromptSet)"
        )
    return False


def tokens_of(draw: Draw) -> tuple[Tensor, Tensor | None]:
    return draw.prompts.clean, draw.prompts.corrupted
