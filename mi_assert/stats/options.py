"""The options every claim family accepts, validated by one function with one error style.

=============  ==========================================  =====================================
option         meaning                                     allowed
=============  ==========================================  =====================================
seeds          sampling seeds: each draws its own prompts  an int or a non-empty sequence of
               (with fixed prompts they only add           distinct ints
               bootstrap resamples: one row, one seed)
model_seeds    training seeds of a zoo model to check too  None or distinct ints
quorum         how many seeds must pass                    None (all), an int 1..len(seeds) or
                                                           a fraction in (0, 1]
alpha          one-sided level of every row                a number in (0, 0.5)
n_resamples    bootstrap resamples per row                 an int >= 100
min_prompts    distinct units a row must rest on           an int >= 2
=============  ==========================================  =====================================

Families keep their own *defaults* (head claims draw fresh prompts per seed and default to
three seeds; claims on fixed prompts default to one) but validate through
:func:`claim_options`, so a value that is wrong in one family is wrong in all of them, with the
same message.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from mi_assert.errors import MiAssertInputError
from mi_assert.stats.bootstrap import check_alpha, check_n_resamples
from mi_assert.stats.claims import DEFAULT_MIN_UNITS

OPTION_NAMES = ("seeds", "model_seeds", "quorum", "alpha", "n_resamples", "min_prompts")


@dataclass(frozen=True)
class ClaimOptions:
    """Validated claim options (see the module docstring for the table)."""

    seeds: tuple[int, ...] = (0,)
    model_seeds: tuple[int, ...] | None = None
    quorum: int | float | None = None
    alpha: float = 0.05
    n_resamples: int = 2000
    min_prompts: int = DEFAULT_MIN_UNITS


def check_int_list(value: Any, name: str, *, allow_none: bool = False) -> tuple[int, ...] | None:
    """An int or a sequence of distinct ints → a tuple (clear errors otherwise)."""
    if value is None:
        if allow_none:
            return None
        raise MiAssertInputError(f"{name} must be an int or a non-empty sequence of distinct ints; got None")
    items = [value] if isinstance(value, (int, np.integer)) and not isinstance(value, bool) else value
    try:
        items = list(items)
    except TypeError as exc:
        raise MiAssertInputError(
            f"{name} must be an int or a non-empty sequence of distinct ints; got {value!r}") from exc
    if not items or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in items):
        raise MiAssertInputError(
            f"{name} must be an int or a non-empty sequence of distinct ints; got {value!r}")
    out = tuple(int(v) for v in items)
    if len(set(out)) != len(out):
        raise MiAssertInputError(f"{name} must be distinct; got {list(out)} (a repeated seed "
                                 "would count the same evidence twice)")
    return out


def check_quorum(quorum: Any, n_seeds: int | None = None) -> int | float | None:
    if quorum is None:
        return None
    if isinstance(quorum, bool) or not isinstance(quorum, (int, float, np.integer, np.floating)):
        raise MiAssertInputError(f"quorum={quorum!r}: use None (all seeds), an int count or a fraction in (0, 1]")
    if isinstance(quorum, (int, np.integer)):
        if quorum < 1 or (n_seeds is not None and quorum > n_seeds):
            allowed = f"lie in 1..{n_seeds} (the number of seeds)" if n_seeds is not None else "be >= 1"
            raise MiAssertInputError(f"quorum={quorum}: an int count must {allowed}")
        return int(quorum)
    if not 0 < float(quorum) <= 1:
        raise MiAssertInputError(f"quorum={quorum!r}: a fraction must lie in (0, 1]")
    return float(quorum)


def check_min_prompts(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or int(value) < 2:
        raise MiAssertInputError(f"min_prompts must be an int >= 2; got {value!r}")
    return int(value)


def claim_options(*, seeds: Any = (0,), model_seeds: Any = None, quorum: Any = None,
                  alpha: Any = 0.05, n_resamples: Any = 2000,
                  min_prompts: Any = DEFAULT_MIN_UNITS) -> ClaimOptions:
    """Validate the shared options (one function, one error style, for every family)."""
    seed_tuple = check_int_list(seeds, "seeds")
    assert seed_tuple is not None
    model_tuple = check_int_list(model_seeds, "model_seeds", allow_none=True)
    n_groups = len(seed_tuple) * (len(model_tuple) if model_tuple else 1)
    return ClaimOptions(
        seeds=seed_tuple, model_seeds=model_tuple, quorum=check_quorum(quorum, n_groups),
        alpha=check_alpha(alpha), n_resamples=check_n_resamples(n_resamples),
        min_prompts=check_min_prompts(min_prompts))


def check_count(value: Any, name: str, minimum: int = 1) -> int:
    """A positive int option such as ``n_prompts`` or ``batch_size``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or int(value) < minimum:
        raise MiAssertInputError(f"{name} must be an int >= {minimum}; got {value!r}")
    return int(value)

