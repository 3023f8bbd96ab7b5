"""Canonical hook names (TransformerLens spelling) and their validation.

Every backend speaks these names, so a claim written against one backend runs on the others.
Shapes follow TransformerLens: ``[batch, pos, d_model]`` for residual-stream-like hooks,
``[batch, pos, head, d_head]`` for q/k/v/z and ``[batch, head, query_pos, key_pos]`` for the
attention pattern and scores.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mi_assert.errors import MiAssertInputError, UnknownHookError, suggest

GLOBAL_HOOKS: tuple[str, ...] = ("hook_embed", "hook_pos_embed", "ln_final.hook_normalized")
BLOCK_HOOKS: tuple[str, ...] = (
    "hook_resid_pre",
    "hook_resid_mid",
    "hook_resid_post",
    "hook_attn_out",
    "hook_mlp_out",
)
ATTN_HOOKS: tuple[str, ...] = (
    "attn.hook_q",
    "attn.hook_k",
    "attn.hook_v",
    "attn.hook_z",
    "attn.hook_pattern",
    "attn.hook_attn_scores",
)
#: hooks whose activation has a head axis, and where that axis is.
HEAD_AXIS: dict[str, int] = {
    "attn.hook_q": 2,
    "attn.hook_k": 2,
    "attn.hook_v": 2,
    "attn.hook_z": 2,
    "attn.hook_pattern": 1,
    "attn.hook_attn_scores": 1,
}
#: position axis (query axis for patterns) of every canonical hook kind.
POS_AXIS: dict[str, int] = {"attn.hook_pattern": 2, "attn.hook_attn_scores": 2}

_BLOCK_RE = re.compile(r"^blocks\.(\d+)\.(.+)$")


@dataclass(frozen=True)
class HookName:
    """A parsed canonical hook name: ``layer`` is None for global hooks."""

    name: str
    layer: int | None
    kind: str  # e.g. "hook_resid_pre", "attn.hook_z", "hook_embed"

    @property
    def head_axis(self) -> int | None:
        return HEAD_AXIS.get(self.kind)

    @property
    def pos_axis(self) -> int:
        return POS_AXIS.get(self.kind, 1)


def block_hook(layer: int, kind: str) -> str:
    return f"blocks.{layer}.{kind}"


def all_hook_names(n_layers: int, has_mlp: bool = True, has_pos_embed: bool = True,
                   parallel_attn_mlp: bool = False) -> list[str]:
    """Every canonical hook name a model with ``n_layers`` blocks exposes.

    ``has_pos_embed=False`` (rotary models) drops ``hook_pos_embed``; ``parallel_attn_mlp``
    (GPT-NeoX: attention and MLP both read resid_pre) drops ``hook_resid_mid``.
    """
    names = [n for n in GLOBAL_HOOKS if has_pos_embed or n != "hook_pos_embed"]
    kinds = [k for k in BLOCK_HOOKS + ATTN_HOOKS if has_mlp or k not in ("hook_mlp_out",)]
    if parallel_attn_mlp:
        kinds = [k for k in kinds if k != "hook_resid_mid"]
    elif not has_mlp:
        kinds = [k for k in kinds if k != "hook_resid_mid"] + ["hook_resid_mid"]
    for layer in range(n_layers):
        names += [block_hook(layer, k) for k in kinds]
    return names


def parse_hook(name: str, n_layers: int, has_mlp: bool = True, has_pos_embed: bool = True,
               parallel_attn_mlp: bool = False) -> HookName:
    """Validate ``name`` against a model with ``n_layers`` blocks (flags as :func:`all_hook_names`).

    Raises :class:`UnknownHookError` naming the closest valid hooks, or a layer-range error.
    """
    if not isinstance(name, str):
        raise MiAssertInputError(f"hook name must be a string, got {type(name).__name__}")
    if name == "hook_pos_embed" and not has_pos_embed:
        raise UnknownHookError(
            "hook 'hook_pos_embed': this model has no learned positional embedding (rotary "
            "positions act inside attention); the residual stream starts at hook_embed / "
            "blocks.0.hook_resid_pre"
        )
    if name in GLOBAL_HOOKS:
        return HookName(name, None, name)
    match = _BLOCK_RE.match(name)
    kinds = BLOCK_HOOKS + ATTN_HOOKS
    if match:
        layer, kind = int(match.group(1)), match.group(2)
        if kind in kinds:
            if not has_mlp and kind == "hook_mlp_out":
                raise UnknownHookError(
                    f"hook {name!r}: this model has no MLP layers (attention-only); "
                    f"allowed block hooks are {', '.join(k for k in kinds if k != 'hook_mlp_out')}"
                )
            if parallel_attn_mlp and kind == "hook_resid_mid":
                raise UnknownHookError(
                    f"hook {name!r}: this model runs attention and MLP in parallel (both read "
                    "resid_pre, both write resid_post), so there is no resid_mid; use "
                    f"blocks.{layer}.hook_resid_pre / hook_attn_out / hook_mlp_out / hook_resid_post"
                )
            if not 0 <= layer < n_layers:
                raise MiAssertInputError(
                    f"hook {name!r}: layer {layer} is out of range; the model has "
                    f"{n_layers} layers (0..{n_layers - 1})"
                )
            return HookName(name, layer, kind)
    allowed = all_hook_names(n_layers, has_mlp, has_pos_embed, parallel_attn_mlp)
    raise UnknownHookError(
        f"unknown hook {name!r}.{suggest(name, allowed)} Allowed: "
        f"{', '.join(GLOBAL_HOOKS)}, and blocks.{{0..{n_layers - 1}}}.{{"
        f"{', '.join(kinds)}}}"
    )
