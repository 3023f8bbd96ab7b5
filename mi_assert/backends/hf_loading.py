"""Load a Hugging Face model (local ``save_pretrained`` folder or hub name) on any backend.

``load_hf`` is called by :func:`mi_assert.loading.load_model`. Every backend gets the same
weights *without* TransformerLens weight processing (no LayerNorm folding, no centering), so
activations agree with the Hugging Face model to float precision on all three backends.

Offline, a hub name whose files are not cached raises ``OSError`` from ``transformers`` or
``huggingface_hub``; ``loading._load_hub`` turns that into ``ModelUnavailableError``. Nothing
global (environment variables, hub settings) is changed here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import torch

from mi_assert.backends.architectures import architecture_for
from mi_assert.backends.base import ModelHandle
from mi_assert.errors import MiAssertInputError

#: keyword arguments passed to the underlying loaders (the rest are refused with a clear error)
PASSTHROUGH_KWARGS: tuple[str, ...] = ("device_map", "n_devices", "max_memory", "revision",
                                       "trust_remote_code", "offload_folder")


def load_hf(
    name_or_path: str,
    backend: str,
    device: torch.device,
    dtype: torch.dtype | None,
    kwargs: dict[str, Any],
) -> ModelHandle:
    """A handle over a Hugging Face causal LM on ``backend`` (nnsight | bridge | transformer_lens)."""
    unknown = sorted(set(kwargs) - set(PASSTHROUGH_KWARGS))
    if unknown:
        raise MiAssertInputError(
            f"load_model got unknown keyword argument(s) {unknown} for a Hugging Face model; "
            f"allowed: {', '.join(PASSTHROUGH_KWARGS)}"
        )
    if backend == "nnsight":
        return _load_nnsight(name_or_path, device, dtype, kwargs)
    if backend == "bridge":
        return _load_bridge(name_or_path, device, dtype, kwargs)
    if backend == "transformer_lens":
        return _load_transformer_lens(name_or_path, device, dtype, kwargs)
    raise MiAssertInputError(
        f"unknown backend {backend!r}; allowed: transformer_lens, bridge, nnsight"
    )


def _is_local(name_or_path: str) -> bool:
    return Path(name_or_path).expanduser().is_dir()


def load_hf_model(
    name_or_path: str, device: torch.device, dtype: torch.dtype | None, kwargs: dict[str, Any]
) -> tuple[Any, Any | None]:
    """The ``transformers`` model (eager attention, eval mode) and its tokenizer (or None)."""
    from transformers import AutoConfig, AutoModelForCausalLM

    hub_kwargs: dict[str, Any] = {k: kwargs[k] for k in ("revision", "trust_remote_code") if k in kwargs}
    config = AutoConfig.from_pretrained(name_or_path, **hub_kwargs)
    architecture_for(config, what=f"model {name_or_path!r}")  # refuse before loading weights
    load_kwargs: dict[str, Any] = {"attn_implementation": "eager", **hub_kwargs}
    if dtype is not None:
        load_kwargs["dtype"] = dtype
    if "device_map" in kwargs:
        load_kwargs["device_map"] = kwargs["device_map"]
        for key in ("max_memory", "offload_folder"):
            if key in kwargs:
                load_kwargs[key] = kwargs[key]
    # transformers types ``PreTrainedModel.to`` as an unbound wrapper and leaves ``eval`` unannotated
    model: Any = AutoModelForCausalLM.from_pretrained(name_or_path, **load_kwargs)
    if "device_map" not in kwargs:
        model = model.to(device)
    model.eval()
    return model, _load_tokenizer(name_or_path, hub_kwargs)


def _load_tokenizer(name_or_path: str, hub_kwargs: dict[str, Any]) -> Any | None:
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(name_or_path, **hub_kwargs)
    except (OSError, ValueError, TypeError):
        # a folder with weights but no tokenizer files: the model still runs on token ids
        return None


def _load_nnsight(name_or_path: str, device: torch.device, dtype: torch.dtype | None,
                  kwargs: dict[str, Any]) -> ModelHandle:
    from mi_assert.backends.nnsight_backend import NNsightHandle

    model, tokenizer = load_hf_model(name_or_path, device, dtype, kwargs)
    placed = getattr(model, "hf_device_map", None) or {}
    first = next(iter(placed.items()), None)
    if tokenizer is not None and first is not None and first[1] == "disk":
        raise MiAssertInputError(
            f"device_map put {first[0]!r}, the model's first module, on 'disk': nnsight's "
            "TransformersModel builds a transformers pipeline on the first device of the map, "
            "which must be a torch device. Keep the first modules on 'cpu' or a GPU (raise "
            "max_memory, or give an explicit map); later blocks may be offloaded to 'disk'"
        )
    return NNsightHandle.from_hf(model, tokenizer, spec=name_or_path)


def _load_bridge(name_or_path: str, device: torch.device, dtype: torch.dtype | None,
                 kwargs: dict[str, Any]) -> ModelHandle:
    from mi_assert.backends.bridge import BridgeHandle

    if "device_map" in kwargs or "n_devices" in kwargs:
        # the bridge does its own placement: hand it the name and the placement kwargs
        from transformers import AutoConfig

        architecture_for(AutoConfig.from_pretrained(name_or_path), what=f"model {name_or_path!r}")
        if "offload_folder" in kwargs:
            raise MiAssertInputError(
                "backend 'bridge' does not take offload_folder: TransformerBridge refuses disk "
                "offload (its wrapped components can bypass accelerate's hooks); use "
                "backend='nnsight' for a model offloaded to disk"
            )
        try:
            return BridgeHandle.boot(name_or_path, device=None, dtype=dtype or torch.float32,
                                     placement={k: kwargs[k] for k in ("device_map", "n_devices", "max_memory")
                                                if k in kwargs})
        except ValueError as exc:
            if "offload" not in str(exc):
                raise
            raise MiAssertInputError(
                f"backend 'bridge' cannot run this device_map: {exc} Use backend='nnsight' for "
                "a model offloaded to disk"
            ) from exc
    model, tokenizer = load_hf_model(name_or_path, device, dtype, kwargs)
    return BridgeHandle.boot(name_or_path, hf_model=model, tokenizer=tokenizer, device=device,
                             dtype=dtype or model.dtype)


def _load_transformer_lens(name_or_path: str, device: torch.device, dtype: torch.dtype | None,
                           kwargs: dict[str, Any]) -> ModelHandle:
    from mi_assert.backends.transformer_lens import TransformerLensHandle

    dropped = sorted({"device_map", "max_memory", "offload_folder"} & set(kwargs))
    if dropped:
        raise MiAssertInputError(
            f"backend 'transformer_lens' does not take {', '.join(dropped)}: a HookedTransformer "
            "is placed with n_devices (whole blocks over GPUs), not an accelerate device_map; "
            "use backend='nnsight' (or 'bridge') for device_map"
        )
    if not _is_local(name_or_path):
        from transformer_lens import HookedTransformer

        tl_kwargs: dict[str, Any] = {"device": str(device)}
        if "n_devices" in kwargs:
            tl_kwargs["n_devices"] = kwargs["n_devices"]
        if "revision" in kwargs:
            tl_kwargs["revision"] = kwargs["revision"]
        model = HookedTransformer.from_pretrained_no_processing(
            name_or_path, dtype=dtype or torch.float32, **tl_kwargs
        )
        return TransformerLensHandle(model.eval(), name_or_path)
    hf_model, tokenizer = load_hf_model(name_or_path, torch.device("cpu"), dtype, {})
    model = hooked_transformer_from_hf(hf_model, tokenizer, device)
    return TransformerLensHandle(model, name_or_path)


def hooked_transformer_from_hf(hf_model: Any, tokenizer: Any | None, device: torch.device) -> Any:
    """A HookedTransformer with a Hugging Face model's weights, unprocessed (activations equal
    the HF model's), for the architectures in :mod:`mi_assert.backends.architectures`.

    Uses TransformerLens's own weight converters; the configs mirror TL's
    ``convert_hf_model_config`` (GPT-2: but honouring ``n_inner`` and ``n_positions``).
    """
    from transformer_lens import HookedTransformer, HookedTransformerConfig

    hf_cfg = hf_model.config
    arch = architecture_for(hf_cfg, what="model")
    common: dict[str, Any] = {
        "model_name": str(getattr(hf_cfg, "name_or_path", "") or f"{arch.name}-local"),
        "tokenizer_prepends_bos": False,
        "default_prepend_bos": True,
        "device": str(device),
        "dtype": hf_model.dtype,
    }
    if arch.name == "gpt2":
        from transformer_lens.pretrained.weight_conversions.gpt2 import convert_gpt2_weights

        cfg = HookedTransformerConfig(**_gpt2_tl_config(hf_cfg), **common)
        state = convert_gpt2_weights(hf_model, cfg)
    elif arch.name == "gpt_neox":
        from transformer_lens.pretrained.weight_conversions.neox import convert_neox_weights

        cfg = HookedTransformerConfig(**_neox_tl_config(hf_cfg), **common)
        state = convert_neox_weights(hf_model, cfg)
    else:
        config, convert = _llama_family_tl_config(hf_cfg)
        cfg = HookedTransformerConfig(**config, **common)
        state = convert(hf_model, cfg)
    model = HookedTransformer(cfg)
    model.load_state_dict({k: v.detach().clone() for k, v in state.items()}, strict=False)
    if tokenizer is not None:
        # TL reloads the tokenizer by name_or_path to add BOS handling: the folder path works
        # (TL leaves set_tokenizer unannotated)
        cast(Any, model).set_tokenizer(tokenizer, default_padding_side="right")
    return model.to(device).eval()


def _gpt2_tl_config(hf_cfg: Any) -> dict[str, Any]:
    return {
        "d_model": hf_cfg.n_embd,
        "d_head": hf_cfg.n_embd // hf_cfg.n_head,
        "n_heads": hf_cfg.n_head,
        "d_mlp": hf_cfg.n_inner or 4 * hf_cfg.n_embd,
        "n_layers": hf_cfg.n_layer,
        "n_ctx": hf_cfg.n_positions,
        "eps": hf_cfg.layer_norm_epsilon,
        "d_vocab": hf_cfg.vocab_size,
        "act_fn": hf_cfg.activation_function,
        "use_attn_scale": bool(getattr(hf_cfg, "scale_attn_weights", True)),
        "scale_attn_by_inverse_layer_idx": bool(hf_cfg.scale_attn_by_inverse_layer_idx),
        "normalization_type": "LN",
        "positional_embedding_type": "standard",
        "original_architecture": "GPT2LMHeadModel",
    }


def _neox_tl_config(hf_cfg: Any) -> dict[str, Any]:
    """TL's ``GPTNeoXForCausalLM`` config branch, for a config already in hand."""
    from transformer_lens import loading_from_pretrained as tl_loading

    d_head = hf_cfg.hidden_size // hf_cfg.num_attention_heads
    return {
        "d_model": hf_cfg.hidden_size,
        "d_head": d_head,
        "n_heads": hf_cfg.num_attention_heads,
        "d_mlp": hf_cfg.intermediate_size,
        "n_layers": hf_cfg.num_hidden_layers,
        "n_ctx": hf_cfg.max_position_embeddings,
        "eps": hf_cfg.layer_norm_eps,
        "d_vocab": hf_cfg.vocab_size,
        "act_fn": hf_cfg.hidden_act,
        "use_attn_scale": True,
        "use_local_attn": False,
        "scale_attn_by_inverse_layer_idx": False,
        "parallel_attn_mlp": getattr(hf_cfg, "use_parallel_residual", True),
        "positional_embedding_type": "rotary",
        "rotary_adjacent_pairs": False,
        # TL imports get_rotary_pct_from_config into loading_from_pretrained without declaring a re-export
        "rotary_dim": round(tl_loading.get_rotary_pct_from_config(hf_cfg) * d_head),  # type: ignore[attr-defined]
        "rotary_base": tl_loading._get_rope_theta(hf_cfg),
        "normalization_type": "LN",
        "original_architecture": "GPTNeoXForCausalLM",
    }


def _llama_family_tl_config(hf_cfg: Any) -> tuple[dict[str, Any], Any]:
    """TL's config branch for ``LlamaForCausalLM`` / ``MistralForCausalLM`` /
    ``Qwen2ForCausalLM``, for a config already in hand, and TL's weight converter for it."""
    from transformer_lens import loading_from_pretrained as tl_loading
    from transformer_lens.pretrained.weight_conversions.llama import convert_llama_weights
    from transformer_lens.pretrained.weight_conversions.mistral import convert_mistral_weights
    from transformer_lens.pretrained.weight_conversions.qwen2 import convert_qwen2_weights

    from mi_assert.backends.architectures import llama_head_dim
    from mi_assert.errors import UnsupportedModelError

    model_type = hf_cfg.model_type
    if model_type in ("llama", "mistral"):
        for flag in ("attention_bias", "mlp_bias"):
            if getattr(hf_cfg, flag, False):
                # TL's converter writes zero biases: the HookedTransformer would compute another function
                raise UnsupportedModelError(
                    f"{model_type} config with {flag}=True: TransformerLens's converter drops those biases")
    d_head = llama_head_dim(hf_cfg)
    n_kv = getattr(hf_cfg, "num_key_value_heads", None)
    base: dict[str, Any] = {
        "d_model": hf_cfg.hidden_size,
        "d_head": d_head,
        "n_heads": hf_cfg.num_attention_heads,
        "d_mlp": hf_cfg.intermediate_size,
        "n_layers": hf_cfg.num_hidden_layers,
        "eps": hf_cfg.rms_norm_eps,
        "d_vocab": hf_cfg.vocab_size,
        "act_fn": hf_cfg.hidden_act,
        "normalization_type": "RMS",
        "positional_embedding_type": "rotary",
        "gated_mlp": True,
    }
    if model_type == "mistral":
        window = getattr(hf_cfg, "sliding_window", None)
        base.update({
            # TL caps Mistral's context at 2048 (its attention-mask buffer is n_ctx^2)
            "n_ctx": min(int(hf_cfg.max_position_embeddings), 2048),
            "n_key_value_heads": n_kv,
            "window_size": window,
            "attn_types": ["local"] * hf_cfg.num_hidden_layers if window else None,
            "use_local_attn": bool(window),
            "rotary_base": tl_loading._get_rope_theta(hf_cfg),
            "original_architecture": "MistralForCausalLM",
        })
        return base, convert_mistral_weights
    base.update({
        "n_ctx": hf_cfg.max_position_embeddings,
        "rotary_adjacent_pairs": False,
        "rotary_dim": d_head,
        "final_rms": True,
    })
    if model_type == "qwen2":
        base.update({
            "n_key_value_heads": n_kv,
            "use_attn_scale": True,
            "rotary_base": int(tl_loading._get_rope_theta(hf_cfg)),
            "original_architecture": "Qwen2ForCausalLM",
        })
        return base, convert_qwen2_weights
    base.update({
        "n_key_value_heads": n_kv if n_kv not in (None, hf_cfg.num_attention_heads) else None,
        "rotary_base": tl_loading._get_rope_theta(hf_cfg),
        "original_architecture": "LlamaForCausalLM",
    })
    tl_loading._apply_llama3_rope_scaling(base, hf_cfg)
    return base, convert_llama_weights
