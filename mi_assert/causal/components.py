"""Parse what users call model components into canonical hook sites.

Accepted spellings (validated against the model, with suggestions on typos):

* heads: ``(layer, head)`` tuples, ``"L9H9"`` / ``"l9h9"``, ``"9.9"``, ``"9:9"`` (the head-name
  grammar of :mod:`mi_assert.heads.names`) → ``blocks.9.attn.hook_z``
  at that head (TransformerLens's ``head_out`` patching: the head's output before ``W_O``);
* ``"attnL"`` → ``blocks.L.hook_attn_out``; ``"mlpL"`` → ``blocks.L.hook_mlp_out``;
* ``"resid_preL"``, ``"resid_midL"``, ``"resid_postL"`` → the residual stream hooks;
* ``"embed"``, ``"pos_embed"``;
* any canonical hook name (``"blocks.3.hook_mlp_out"``; a per-head hook such as
  ``"blocks.1.attn.hook_z"`` without a head means all heads of it).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from mi_assert.backends.base import ModelHandle
from mi_assert.errors import MiAssertInputError, UnknownHookError, suggest
from mi_assert.heads.names import is_head_name, is_int, parse_one

_SITE_RE = re.compile(r"^(attn|mlp|resid_pre|resid_mid|resid_post)_?(\d+)$")
_SITE_HOOK = {
    "attn": "hook_attn_out",
    "mlp": "hook_mlp_out",
    "resid_pre": "hook_resid_pre",
    "resid_mid": "hook_resid_mid",
    "resid_post": "hook_resid_post",
}
_GLOBAL = {"embed": "hook_embed", "pos_embed": "hook_pos_embed"}


@dataclass(frozen=True)
class Component:
    """A patchable site: a canonical hook and, for per-head hooks, one head."""

    hook: str
    layer: int | None
    head: int | None = None

    @property
    def label(self) -> str:
        if self.head is not None and self.hook.endswith("attn.hook_z"):
            return f"L{self.layer}H{self.head}"
        if self.head is not None:
            return f"L{self.layer}H{self.head}.{self.hook.rsplit('hook_', 1)[-1]}"
        for short, kind in _SITE_HOOK.items():
            if self.hook == f"blocks.{self.layer}.{kind}":
                return f"{short}{self.layer}"
        return self.hook

    @property
    def is_head(self) -> bool:
        return self.head is not None

    def __str__(self) -> str:
        return self.label


def component_names(handle: ModelHandle) -> list[str]:
    """Short names of every component of the model (for error messages and docs)."""
    names = [f"L{layer}H{head}" for layer in range(handle.n_layers) for head in range(handle.n_heads)]
    for layer in range(handle.n_layers):
        names += [f"attn{layer}", f"resid_pre{layer}", f"resid_mid{layer}", f"resid_post{layer}"]
        if handle.has_mlp:
            names.append(f"mlp{layer}")
    return names + list(_GLOBAL)


def parse_component(handle: ModelHandle, spec: Any) -> Component:
    """One component spec → :class:`Component` (raises a clear error when unknown)."""
    if isinstance(spec, Component):
        return spec
    if is_head_name(spec) or (isinstance(spec, (tuple, list)) and len(spec) == 2
                              and all(is_int(x) for x in spec)):
        layer, head = handle.check_head(*parse_one(spec))
        return Component(f"blocks.{layer}.attn.hook_z", layer, head)
    if not isinstance(spec, str):
        raise MiAssertInputError(
            f"component {spec!r} not understood: use a (layer, head) tuple, a head name "
            "('L9H9' or '9.9'), a site ('mlp3', 'attn3', 'resid_pre5', 'resid_mid5', "
            "'resid_post5') or a canonical hook name"
        )
    text = spec.strip()
    m = _SITE_RE.match(text)
    if m:
        kind, layer = m.group(1), int(m.group(2))
        handle.check_layer(layer)
        if kind == "mlp" and not handle.has_mlp:
            raise MiAssertInputError(
                f"component {spec!r}: model {handle.spec!r} is attention-only (no MLP layers); "
                "allowed sites are attnL, resid_preL, resid_midL, resid_postL and heads"
            )
        return Component(f"blocks.{layer}.{_SITE_HOOK[kind]}", layer)
    if text in _GLOBAL:
        return Component(_GLOBAL[text], None)
    if text.startswith("blocks.") or text.startswith("hook_") or text.startswith("ln_final"):
        parsed = handle.parse_hook(text)  # raises UnknownHookError with suggestions
        return Component(parsed.name, parsed.layer)
    raise UnknownHookError(
        f"unknown component {spec!r}.{suggest(text, component_names(handle))} Allowed: "
        f"(layer, head) tuples, 'L<l>H<h>' or '<l>.<h>' (layers 0..{handle.n_layers - 1}, "
        f"heads 0..{handle.n_heads - 1}), 'attn<l>', "
        + ("'mlp<l>', " if handle.has_mlp else "")
        + "'resid_pre<l>', 'resid_mid<l>', 'resid_post<l>', 'embed', 'pos_embed', or a "
        "canonical hook name such as 'blocks.0.hook_resid_pre'"
    )


def parse_components(handle: ModelHandle, specs: Any) -> list[Component]:
    """A list of component specs (a single spec is accepted too) → unique components, in order."""
    if isinstance(specs, (str, Component)) or (
        isinstance(specs, tuple) and len(specs) == 2 and all(isinstance(x, int) for x in specs)
    ):
        specs = [specs]
    if not isinstance(specs, Iterable):
        raise MiAssertInputError(f"components must be a list of component specs; got {specs!r}")
    out: list[Component] = []
    for spec in specs:
        comp = parse_component(handle, spec)
        if comp not in out:
            out.append(comp)
    if not out:
        raise MiAssertInputError("components is empty: name at least one head or site to patch")
    return out


def all_heads(handle: ModelHandle) -> list[Component]:
    return [Component(f"blocks.{layer}.attn.hook_z", layer, head)
            for layer in range(handle.n_layers) for head in range(handle.n_heads)]


def all_mlps(handle: ModelHandle) -> list[Component]:
    if not handle.has_mlp:
        return []
    return [Component(f"blocks.{layer}.hook_mlp_out", layer) for layer in range(handle.n_layers)]


def check_positions(positions: Sequence[int] | None, n_pos: int) -> list[int] | None:
    """Validate sequence positions against prompts of ``n_pos`` tokens (negatives allowed)."""
    if positions is None:
        return None
    if isinstance(positions, int):
        positions = [positions]
    out: list[int] = []
    for p in positions:
        if not isinstance(p, int) or isinstance(p, bool) or not -n_pos <= p < n_pos:
            raise MiAssertInputError(
                f"position {p!r} is out of range: prompts have {n_pos} tokens, so positions must "
                f"be ints in {-n_pos}..{n_pos - 1}"
            )
        out.append(p % n_pos)
    if not out:
        raise MiAssertInputError("positions is empty: pass None for all positions")
    return sorted(set(out))
