"""Parse the many ways people name attention heads into ``(layer, head)`` pairs.

Accepted: ``(layer, head)`` ints; ``layer`` int with ``head`` a list of ints (heads of that
layer); a pair ``(5, 5)``; a name ``"L5H5"`` / ``"l5h5"`` / ``"5.5"`` / ``"5:5"``; or a list of
any of these. Every head is range-checked against the model.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from mi_assert.errors import MiAssertInputError

Head = tuple[int, int]

_NAME_RE = re.compile(r"^\s*(?:[lL](\d+)\s*[hH](\d+)|(\d+)\s*[.:]\s*(\d+))\s*$")

_FORMS = ("(model, layer, head)", "(model, 'L5H5')", "(model, '5.5')", "(model, (5, 5))",
          "(model, [(5, 1), (5, 5)])", "(model, ['L5H1', '5.5'])", "(model, 5, [1, 5])")


def head_name(layer: int, head: int) -> str:
    """The canonical display name ``L{layer}H{head}``."""
    return f"L{layer}H{head}"


def is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) or type(x).__name__ in ("int64", "int32")


def is_head_name(spec: Any) -> bool:
    """``spec`` is a string in the head-name grammar (``"L5H5"``, ``"5.5"``, ``"5:5"``)."""
    return isinstance(spec, str) and _NAME_RE.match(spec) is not None


def parse_one(spec: Any) -> Head:
    """One head from a pair or a name (no range check)."""
    if isinstance(spec, str):
        match = _NAME_RE.match(spec)
        if not match:
            raise MiAssertInputError(
                f"head name {spec!r} not understood: write 'L5H5' or '5.5' (layer 5, head 5)"
            )
        a, b, c, d = match.groups()
        return (int(a), int(b)) if a is not None else (int(c), int(d))
    if isinstance(spec, (tuple, list)) and len(spec) == 2 and all(is_int(x) for x in spec):
        return int(spec[0]), int(spec[1])
    raise MiAssertInputError(
        f"head {spec!r} not understood: give (layer, head) ints or a name like 'L5H5' / '5.5'"
    )


def parse_heads(layer: Any, head: Any = None) -> list[Head]:
    """All heads named by the ``(layer, head)`` arguments of an assertion (no range check).

    Raises :class:`MiAssertInputError` for an empty list, duplicates, or an unknown form.
    """
    if layer is None and head is None:
        raise MiAssertInputError("no head given: use one of " + ", ".join(_FORMS))
    if is_int(layer) and is_int(head):
        heads = [(int(layer), int(head))]
    elif is_int(layer) and isinstance(head, (list, tuple)) and all(is_int(h) for h in head):
        heads = [(int(layer), int(h)) for h in head]
    elif layer is None or head is None:
        spec = head if layer is None else layer
        if isinstance(spec, str) or (isinstance(spec, tuple) and len(spec) == 2
                                     and all(is_int(x) for x in spec)):
            heads = [parse_one(spec)]
        elif isinstance(spec, Sequence):
            heads = [parse_one(s) for s in spec]
        elif is_int(spec):
            which = "head" if layer is None else "layer"
            raise MiAssertInputError(
                f"only a {which} ({spec}) was given; name both, e.g. (model, layer, head) or 'L5H5'"
            )
        else:
            raise MiAssertInputError(f"heads {spec!r} not understood: use one of " + ", ".join(_FORMS))
    else:
        raise MiAssertInputError(
            f"layer={layer!r}, head={head!r} not understood: use one of " + ", ".join(_FORMS)
        )
    if not heads:
        raise MiAssertInputError("empty list of heads: name at least one head")
    dupes = sorted({h for h in heads if heads.count(h) > 1})
    if dupes:
        raise MiAssertInputError(
            f"heads listed more than once: {', '.join(head_name(*h) for h in dupes)}"
        )
    return heads


def check_heads(heads: Sequence[Head], n_layers: int, n_heads: int) -> list[Head]:
    """Range-check heads against a model's shape (message names the allowed ranges)."""
    for layer, head in heads:
        if not 0 <= layer < n_layers:
            raise MiAssertInputError(
                f"layer {layer} is out of range: the model has {n_layers} layers (0..{n_layers - 1})"
            )
        if not 0 <= head < n_heads:
            raise MiAssertInputError(
                f"head {head} is out of range: layer {layer} has {n_heads} heads (0..{n_heads - 1})"
            )
    return list(heads)
