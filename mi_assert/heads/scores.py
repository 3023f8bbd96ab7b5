"""Per-prompt attention-role scores for every head, from one batched forward pass.

Scoring follows TransformerLens's ``head_detector`` (``transformer_lens/head_detector.py``):
a role has a 0/1 *detection pattern* ``D[q, k]`` built from the prompt's tokens (the same
patterns as TL's ``get_previous_token_head_detection_pattern``,
``get_duplicate_token_head_detection_pattern`` and ``get_induction_head_detection_pattern``;
plus a BOS pattern, column 0), and a head's match is its attention mass on the marked cells.

Two normalisations of that mass:

* TL's ``"mul"`` score: ``sum(A * D) / sum(A)``. With TL's default ``exclude_bos=False`` the
  BOS column is *not* excluded, every row of ``A`` sums to 1, so ``sum(A)`` is the sequence
  length and query rows with no marked cell (e.g. the whole first repeat for induction) count as
  zeros: a perfect induction head scores about ``L / (2L + 1) < 0.5``. :func:`tl_mul_score`
  reproduces it exactly (tested against TL).
* The *standard* score used here (ARENA's detectors, the "induction score" of the TL Main Demo):
  the mean, over query rows that have at least one marked cell, of the attention mass on the
  marked cells. For a perfect head it is 1; it equals ``tl_mul_score * seq_len / n_rows``.
  For induction on ``BOS + r + r`` it is the mean of the stripe ``q -> q - L + 1`` over the
  second repeat (plus accidental repeats inside ``r``, which TL's pattern marks too). The
  0.4 thresholds of TL's detector demos and ARENA are on this scale.

One prompt is one sample: the per-prompt score is the statistic the bootstrap resamples.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from mi_assert.backends.base import ModelHandle
from mi_assert.errors import MiAssertInputError, check_finite, suggest

#: attention roles scored from patterns (``copying`` is a weight-based role, see copying.py)
ATTENTION_ROLES: tuple[str, ...] = ("induction", "previous_token", "duplicate_token", "bos")
ROLES: tuple[str, ...] = (*ATTENTION_ROLES, "copying")
_ALIASES: dict[str, str] = {
    "induction_head": "induction",
    "previous_token_head": "previous_token", "prev_token": "previous_token", "previous": "previous_token",
    "prev": "previous_token",
    "duplicate_token_head": "duplicate_token", "duplicate": "duplicate_token",
    "attention_sink": "bos", "sink": "bos", "bos_sink": "bos", "attends_to_bos": "bos",
    "copy": "copying", "copying_head": "copying",
}


def resolve_role(role: str) -> str:
    """Canonical role name (accepts TL's ``*_head`` names and a few aliases)."""
    if not isinstance(role, str):
        raise MiAssertInputError(f"role must be a string, one of {', '.join(ROLES)}; got {role!r}")
    key = role.strip().lower().replace("-", "_").replace(" ", "_")
    key = _ALIASES.get(key, key)
    if key not in ROLES:
        raise MiAssertInputError(
            f"unknown head role {role!r}.{suggest(key, [*ROLES, *_ALIASES])} "
            f"Allowed: {', '.join(ROLES)}"
        )
    return key


def detection_pattern(role: str, tokens: Tensor) -> Tensor:
    """0/1 float ``[batch, q, k]`` (lower-triangular) marking where ``role`` should attend.

    Per prompt, identical to TL's ``get_<role>_head_detection_pattern(tokens[b])``.
    """
    role = resolve_role(role)
    if tokens.ndim != 2:
        raise MiAssertInputError(f"tokens must be [batch, pos]; got shape {tuple(tokens.shape)}")
    b, n = tokens.shape
    eye_below = torch.zeros(n, n)
    if n > 1:
        eye_below[1:, :-1] = torch.eye(n - 1)
    if role == "previous_token":
        return eye_below.expand(b, n, n).clone()
    if role == "bos":
        out = torch.zeros(b, n, n)
        out[:, 1:, 0] = 1.0  # query 0 can only attend to itself: not evidence of anything
        return out
    same = (tokens[:, :, None] == tokens[:, None, :]).float()  # [b, q, k]
    same = torch.tril(same, diagonal=-1)  # earlier positions only, not the token itself
    if role == "duplicate_token":
        return same
    if role == "induction":
        shifted = torch.zeros_like(same)  # key k+1 is marked when key k repeats the query token
        shifted[:, :, 1:] = same[:, :, :-1]
        return torch.tril(shifted)
    raise MiAssertInputError(f"role {role!r} is not scored from attention patterns")


def standard_scores(pattern: Tensor, det: Tensor, role: str | None = None) -> Tensor:
    """Per-prompt standard score ``[batch, heads]`` from ``pattern [batch, heads, q, k]``.

    Mean over query rows with a marked cell of the attention mass on marked cells. Prompts with
    no marked row get NaN (the caller raises: such prompts cannot test the role).

    ``role`` (optional) names ``det``'s role: previous-token and BOS patterns mark one fixed
    cell per row, whose mass is then read directly instead of summed over every key (the same
    number: the other terms of the sum are exact zeros).
    """
    det = det.to(pattern.dtype).to(pattern.device)
    if role in ("previous_token", "bos") and pattern.shape[-1] > 1:
        mass = pattern.new_zeros(pattern.shape[:-1])  # [b, h, q]
        if role == "previous_token":
            mass[..., 1:] = pattern.diagonal(offset=-1, dim1=-2, dim2=-1)
        else:
            mass[..., 1:] = pattern[..., 1:, 0]
    else:
        mass = torch.einsum("bhqk,bqk->bhq", pattern, det)  # attention on marked cells per row
    rows = (det.sum(-1) > 0).to(pattern.dtype)  # [b, q]
    n_rows = rows.sum(-1)  # [b]
    total = torch.einsum("bhq,bq->bh", mass, rows)
    return total / n_rows[:, None]


def tl_mul_score(pattern: Tensor, det: Tensor, exclude_bos: bool = False,
                 exclude_current_token: bool = False) -> Tensor:
    """TransformerLens's ``"mul"`` score, batched: ``[..., q, k]`` patterns → ``[...]``."""
    pattern = pattern.clone()
    if exclude_bos:
        pattern[..., :, 0] = 0
    if exclude_current_token:
        pattern.diagonal(dim1=-2, dim2=-1).zero_()
    return (pattern * det).sum((-2, -1)) / pattern.sum((-2, -1))


def check_rows_sum_to_one(layer: int, pattern: Tensor, atol: float = 1e-3) -> None:
    """Raise when attention rows do not sum to 1.

    TransformerLens replaces NaN attention probabilities with 0, so a model with NaN weights
    yields all-zero patterns rather than NaN ones; a row sum far from 1 is how that shows.
    """
    gap = (pattern.sum(-1) - 1).abs()
    if bool((gap > atol).any()):
        n_bad = int((gap > atol).sum())
        raise MiAssertInputError(
            f"attention pattern of layer {layer} has {n_bad} non-finite row(s) that do not sum to 1 "
            f"(max gap {float(gap.max()):.3g}): the attention scores hold NaN or inf (TransformerLens "
            "zeroes NaN patterns). Check the model's weights and dtype (fp16 overflow is a common cause)."
        )


def pattern_hooks(n_layers: int) -> list[str]:
    return [f"blocks.{layer}.attn.hook_pattern" for layer in range(n_layers)]


def attention_scores(
    handle: ModelHandle,
    roles: str | Sequence[str],
    tokens: Tensor,
    batch_size: int = 64,
    keep_example: bool = True,
    n_layers: int | None = None,
) -> tuple[dict[str, Tensor], dict[int, Tensor]]:
    """Per-prompt scores ``{role: [n_prompts, n_layers, n_heads]}`` for every head of the
    first ``n_layers`` layers (default: all).

    One forward pass per ``batch_size`` prompts serves every role in ``roles``; it captures
    only those layers' patterns, computes no logits and (where the backend can) ends after the
    last pattern read (:meth:`~mi_assert.backends.base.ModelHandle.capture_activations`), so a
    layer's scores are the same whatever ``n_layers`` is. Also returns prompt 0's patterns
    ``{layer: [n_heads, q, k]}`` (for figures) when ``keep_example``.
    """
    roles = [resolve_role(r) for r in ([roles] if isinstance(roles, str) else roles)]
    for role in roles:
        if role not in ATTENTION_ROLES:
            raise MiAssertInputError(f"role {role!r} is not an attention-pattern role")
    if batch_size < 1:
        raise MiAssertInputError(f"batch_size must be >= 1; got {batch_size}")
    depth = handle.n_layers if n_layers is None else int(n_layers)
    if not 1 <= depth <= handle.n_layers:
        raise MiAssertInputError(
            f"n_layers={n_layers!r}: score between 1 and the model's {handle.n_layers} layers")
    tokens_cpu = tokens.cpu()
    dets = {role: detection_pattern(role, tokens_cpu) for role in roles}
    for role, det_all in dets.items():
        empty = (det_all.sum((-2, -1)) == 0).nonzero().flatten().tolist()
        if empty:
            raise MiAssertInputError(
                f"{len(empty)} prompt(s) (e.g. #{empty[0]}) give the {role} role nothing to attend "
                f"to (no position where a {role.replace('_', '-')} head has a target); use "
                "prompts with repeated tokens"
            )
    out = {role: torch.empty(tokens.shape[0], depth, handle.n_heads) for role in roles}
    example: dict[int, Tensor] = {}
    hooks = pattern_hooks(depth)
    for start in range(0, tokens.shape[0], batch_size):
        stop = start + batch_size
        cache = handle.capture_activations(tokens[start:stop], hooks, check_nan=False)
        for layer, hook in enumerate(hooks):
            pattern = cache[hook].float()
            check_finite(f"attention pattern of layer {layer} ({hook})", pattern)
            check_rows_sum_to_one(layer, pattern)
            for role in roles:
                out[role][start:stop, layer] = standard_scores(pattern, dets[role][start:stop],
                                                               role).cpu()
        if keep_example and not example:
            # a copy: a view would keep the whole batch's patterns alive with the example
            example = {layer: cache[h][0].float().cpu().clone() for layer, h in enumerate(hooks)}
        del cache
    return out, example
