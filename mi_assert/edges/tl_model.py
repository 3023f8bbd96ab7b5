"""The HookedTransformer behind a handle, and its per-input hooks switched on for a while.

Edge patching needs each receiver's own input: TransformerLens exposes per-head q/k/v inputs
(``blocks.L.hook_q_input`` ..., ``[batch, pos, head, d_model]``) only with
``cfg.use_split_qkv_input`` and the MLP's input (``blocks.L.hook_mlp_in``) only with
``cfg.use_hook_mlp_in``. A hook added to a hook point that the config leaves switched off is
silently never called, so :func:`split_inputs` sets both flags and the engines check that every
hook they add fired.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from mi_assert.backends.base import ModelHandle
from mi_assert.errors import MiAssertInputError

#: backends whose handles edge sweeps can run on (through the same HookedTransformer)
EDGE_BACKENDS: tuple[str, ...] = ("transformer_lens", "nnsight (wrapping a HookedTransformer)")


def hooked_transformer(handle: ModelHandle) -> Any:
    """The ``HookedTransformer`` a handle runs: a TransformerLens handle's model, or the module
    an nnsight handle wraps. Anything else is refused, naming the backends that work."""
    candidates: list[Any] = []
    if handle.backend == "transformer_lens":
        candidates.append(handle.model)
    elif handle.backend == "nnsight":
        candidates.append(getattr(handle, "module", None))
    for model in candidates:
        if model is not None and "HookedTransformer" in {c.__name__ for c in type(model).__mro__}:
            _check_architecture(handle, model)
            return model
    inner = "" if handle.backend != "nnsight" else " wrapping a Hugging Face model"
    raise MiAssertInputError(
        f"edge sweeps run on TransformerLens HookedTransformer models; model {handle.spec!r} is a "
        f"{handle.backend!r} handle{inner}. Supported: {', '.join(EDGE_BACKENDS)}. Load it with "
        "backend='transformer_lens' (mi_assert.load_model(name, backend='transformer_lens'))")


def _check_architecture(handle: ModelHandle, model: Any) -> None:
    """Refuse models whose heads' outputs do not simply add into the residual stream, or whose
    k/v inputs are shared between heads (the graph has one q, k, v input per head)."""
    cfg = model.cfg
    n_kv = getattr(cfg, "n_key_value_heads", None)
    if n_kv not in (None, cfg.n_heads) and not getattr(cfg, "ungroup_grouped_query_attention", False):
        raise MiAssertInputError(
            f"model {handle.spec!r} uses grouped-query attention ({n_kv} key/value heads for "
            f"{cfg.n_heads} query heads); edge sweeps need one k and v input per head: call "
            "model.set_ungroup_grouped_query_attention(True) first")
    post_norm = getattr(cfg, "use_normalization_before_and_after", False) or \
        getattr(cfg, "original_architecture", None) in _post_norm_architectures()
    if post_norm:
        raise MiAssertInputError(
            f"model {handle.spec!r} normalises the attention output before adding it to the "
            "residual stream (post-norm / LN after attention), so a head's output is not an "
            "additive message to later nodes; edge sweeps support pre-norm models (GPT-2 style)")
    if getattr(cfg, "positional_embedding_type", "standard") == "shortformer":
        raise MiAssertInputError(
            f"model {handle.spec!r} uses shortformer positions (added to queries and keys, not to "
            "the residual stream); edge sweeps support standard, rotary and ALiBi positions")


def _post_norm_architectures() -> frozenset[str]:
    try:
        from transformer_lens.utilities.architectures import POST_NORM_ARCHITECTURES
    except ImportError:  # older TransformerLens: no post-norm architectures
        return frozenset()
    return frozenset(POST_NORM_ARCHITECTURES)


@contextmanager
def split_inputs(model: Any, qkv: bool = True) -> Iterator[None]:
    """Inside the block ``model`` calls ``hook_q/k/v_input`` (with ``qkv``; ``qkv=False`` only
    switches on ``hook_mlp_in``, a copy of the MLP's input, and leaves attention unsplit) and
    (with MLPs) ``hook_mlp_in``; after it every config has its own values back, also when the
    block raises."""
    # blocks normally share the model's config object; set the flags on every config a
    # submodule holds so that a block with its own copy cannot skip the hooks
    configs = {id(m.cfg): m.cfg for m in model.modules() if getattr(m, "cfg", None) is not None}
    configs.setdefault(id(model.cfg), model.cfg)
    flags = {"use_split_qkv_input": True} if qkv else {}
    if not getattr(model.cfg, "attn_only", False):
        flags["use_hook_mlp_in"] = True
    before = {(key, name): getattr(cfg, name) for key, cfg in configs.items() for name in flags}
    try:
        for cfg in configs.values():
            for name, value in flags.items():
                setattr(cfg, name, value)
        yield
    finally:
        for (key, name), value in before.items():
            setattr(configs[key], name, value)
