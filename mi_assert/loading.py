"""``load_model``: one entry point for zoo names, local checkpoints and hub names."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, cast

import torch

from mi_assert.backends import BACKENDS, ModelHandle, as_handle
from mi_assert.errors import MiAssertInputError, ModelUnavailableError
from mi_assert.zoo import registry

DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32, "fp32": torch.float32,
    "float16": torch.float16, "fp16": torch.float16,
    "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
    "float64": torch.float64, "fp64": torch.float64,
}


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``auto``/None → cuda when available, else cpu; anything else as torch reads it."""
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError as exc:
        raise MiAssertInputError(f"device {device!r} is not a torch device (e.g. 'auto', 'cpu', 'cuda', 'cuda:1')") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise MiAssertInputError(f"device {device!r} asked for, but CUDA is not available here; use 'auto' or 'cpu'")
    return dev


def resolve_dtype(dtype: str | torch.dtype | None) -> torch.dtype | None:
    if dtype is None or isinstance(dtype, torch.dtype):
        return dtype
    if dtype not in DTYPES:
        raise MiAssertInputError(f"dtype {dtype!r} unknown; allowed: {', '.join(DTYPES)}")
    return DTYPES[dtype]


def resolve_model(model: Any) -> ModelHandle:
    """What every claim family does with the ``model`` a user passes: a zoo spec or a local
    path (a ``str`` or ``Path``) is loaded with :func:`load_model`; a HookedTransformer,
    TransformerBridge, nnsight model or handle goes through :func:`~mi_assert.backends.as_handle`."""
    if isinstance(model, (str, Path)):
        return load_model(model)
    return as_handle(model)


def load_model(
    name_or_path: str | Path,
    backend: str | None = None,
    device: str | torch.device | None = "auto",
    dtype: str | torch.dtype | None = None,
    seed: int | None = None,
    debug: bool | None = None,
    **load_kwargs: Any,
) -> ModelHandle:
    """Load a model as a :class:`ModelHandle`.

    ``name_or_path`` is a zoo spec (``mi_assert.zoo.available()``; ``NAME[@sSEED][:stepSTEP]``),
    a local folder (a Hugging Face ``save_pretrained`` folder or an mi-assert TL checkpoint), or
    a hub name (loaded through TransformerLens / nnsight's own loaders: works where the weights
    are cached or downloadable; otherwise :class:`ModelUnavailableError`).

    ``backend``: ``transformer_lens`` | ``bridge`` | ``nnsight``; the default is
    ``transformer_lens`` for zoo TL models and hub names, ``nnsight`` for local HF folders.
    ``seed`` picks a zoo model's training seed (or a planted model's draw). ``debug`` (default:
    the ``MI_ASSERT_DEBUG`` environment variable) checks the residual-stream identities
    (resid_pre + attn_out = resid_mid, resid_mid + mlp_out = resid_post) right after loading,
    catching hook aliases that point at the wrong tensors. Extra keyword
    arguments pass to the underlying loader (e.g. ``n_devices``, ``device_map``).
    """
    if backend is not None and backend not in BACKENDS:
        raise MiAssertInputError(f"unknown backend {backend!r}; allowed: {', '.join(BACKENDS)}")
    dev = resolve_device(device)
    dt = resolve_dtype(dtype)
    spec = str(name_or_path)
    if registry.is_zoo_spec(spec):
        handle = _load_zoo(spec, backend, dev, dt, seed, load_kwargs)
    elif Path(spec).expanduser().exists():
        handle = _load_local(Path(spec).expanduser(), backend, dev, dt, load_kwargs)
    elif spec.startswith((".", "/", "~")) or spec.endswith((".safetensors", ".pt", ".bin")):
        raise MiAssertInputError(
            f"model path {spec!r} does not exist. Give a zoo name ({', '.join(registry.available())}), "
            "an existing local checkpoint folder, or a hub name"
        )
    elif "/" not in spec and "-" in spec and not _looks_like_hub_name(spec):
        # a near-miss of a zoo name is far likelier than a hub model
        registry.parse_spec(spec)  # raises with suggestions
        raise AssertionError("unreachable")
    else:
        handle = _load_hub(spec, backend or "transformer_lens", dev, dt, load_kwargs)
    handle.load_kwargs = {"backend": handle.backend, "device": str(dev),
                          "dtype": str(dt) if dt else None, "seed": seed, **load_kwargs}
    if debug if debug is not None else os.environ.get("MI_ASSERT_DEBUG", "") not in ("", "0"):
        check_on_load(handle)
    return handle


def check_on_load(handle: ModelHandle, n_prompts: int = 2, n_tokens: int = 8) -> None:
    """Debug-mode check that the backend's hook names point at the right tensors.

    Alias drift between library versions (a ``hook_resid_mid`` that is really something else)
    breaks every claim silently; the residual identities catch it. Raises ``AssertionError``.
    """
    gen = torch.Generator().manual_seed(0)
    tokens = torch.randint(0, handle.d_vocab, (n_prompts, min(n_tokens, handle.n_ctx)), generator=gen)
    atol = 1e-4 if handle.dtype in (torch.float32, torch.float64) else 5e-2
    handle.check_residual_identities(tokens, atol=atol)


def _looks_like_hub_name(spec: str) -> bool:
    from mi_assert.errors import suggest

    if suggest(spec.split("@")[0], registry.available()):
        return False
    return True


def _load_zoo(spec: str, backend: str | None, dev: torch.device, dt: torch.dtype | None,
              seed: int | None, kwargs: dict[str, Any]) -> ModelHandle:
    parsed = registry.parse_spec(spec)
    entry = registry.get(parsed.name)
    model_seed = parsed.seed if parsed.seed is not None else (seed if seed is not None else entry.seeds[0])
    if model_seed not in entry.seeds:
        raise MiAssertInputError(f"zoo model {entry.name!r} has seeds {list(entry.seeds)[:10]}; got {model_seed}")
    full_spec = str(registry.ZooSpec(parsed.name, model_seed, parsed.step))
    if entry.kind == "hf":
        folder = entry.checkpoint_dir(model_seed)
        if not folder.exists():
            raise ModelUnavailableError(f"zoo model {entry.name!r}: folder {folder} is missing; build it with `python -m mi_assert.zoo build {entry.name}`")
        handle = _load_local(folder, backend, dev, dt, kwargs)
        handle.spec = full_spec
        return handle
    meta: dict[str, Any] = {"zoo": entry.name, "model_seed": model_seed}
    if entry.kind == "planted":
        if parsed.step is not None:
            raise MiAssertInputError("planted models have no training steps")
        model, circuit = entry.builder(model_seed, **kwargs)  # type: ignore[misc]
        meta.update(bos_token_id=circuit.bos_token_id, ground_truth=circuit)
    else:
        folder = entry.checkpoint_dir(model_seed)
        weights = folder / ("model.safetensors" if parsed.step is None else f"step{parsed.step}.safetensors")
        if not weights.exists():
            steps = sorted(p.stem for p in folder.glob("step*.safetensors"))
            raise ModelUnavailableError(
                f"zoo model {full_spec!r}: checkpoint {weights} is missing"
                + (f"; available steps: {', '.join(steps)}" if steps else "")
                + f". Train it with `python -m mi_assert.zoo train {entry.name} --seed {model_seed}`"
            )
        model, extra = load_native_tl(folder, weights)
        meta.update(extra)
    return wrap_tl_model(_place(model, dev, dt), full_spec, backend or "transformer_lens", meta)


def _place(model: Any, dev: torch.device, dt: torch.dtype | None) -> Any:
    """``model`` on ``dev`` (in ``dt`` when given), in eval mode."""
    model = model.to(dev)
    if dt is not None:
        model = model.to(dt)
    return model.eval()


def load_native_tl(folder: Path, weights: Path | None = None) -> tuple[Any, dict[str, Any]]:
    """Load an mi-assert native checkpoint (TL config JSON + safetensors)."""
    from safetensors.torch import load_file
    from transformer_lens import HookedTransformer, HookedTransformerConfig

    cfg_dict = json.loads((folder / "config.json").read_text())
    meta = cfg_dict.pop("mi_assert", {})
    cfg = HookedTransformerConfig(**cfg_dict)
    model = HookedTransformer(cfg)
    state = load_file(str(weights or folder / "model.safetensors"))
    model.load_state_dict(state, strict=False)
    tokenizer_dir = folder / "tokenizer"
    if tokenizer_dir.exists():
        from transformers import AutoTokenizer

        # TL leaves set_tokenizer unannotated
        cast(Any, model).set_tokenizer(AutoTokenizer.from_pretrained(str(tokenizer_dir)),
                                       default_padding_side="right")
    return model, meta


def wrap_tl_model(model: Any, spec: str, backend: str, meta: dict[str, Any]) -> ModelHandle:
    """A HookedTransformer as a handle on the asked backend."""
    if backend == "transformer_lens":
        from mi_assert.backends.transformer_lens import TransformerLensHandle

        return TransformerLensHandle(model, spec, meta)
    if backend == "nnsight":
        from mi_assert.backends.nnsight_backend import NNsightHandle

        return NNsightHandle.from_hooked_transformer(model, spec, meta)
    raise MiAssertInputError(
        f"backend {backend!r} cannot hold {spec!r}: TransformerBridge wraps Hugging Face models "
        "only, and this is a native TransformerLens model. Use backend='transformer_lens' or "
        "'nnsight'"
    )


def _load_local(path: Path, backend: str | None, dev: torch.device, dt: torch.dtype | None,
                kwargs: dict[str, Any]) -> ModelHandle:
    if path.is_dir() and (path / "config.json").exists():
        cfg = json.loads((path / "config.json").read_text())
        if "model_type" in cfg:  # Hugging Face folder
            from mi_assert.backends import hf_loading

            return hf_loading.load_hf(str(path), backend or "nnsight", dev, dt, kwargs)
        if "d_model" in cfg:
            model, meta = load_native_tl(path)
            return wrap_tl_model(_place(model, dev, dt), str(path), backend or "transformer_lens", meta)
    raise MiAssertInputError(
        f"{path} is not a checkpoint mi-assert can read: expected a folder with config.json "
        "(a Hugging Face save_pretrained folder, or an mi-assert TL checkpoint)"
    )


def _load_hub(name: str, backend: str, dev: torch.device, dt: torch.dtype | None,
              kwargs: dict[str, Any]) -> ModelHandle:
    from mi_assert.backends import hf_loading

    try:
        return hf_loading.load_hf(name, backend, dev, dt, kwargs)
    except (OSError, ValueError) as exc:  # HF raises OSError when offline and not cached
        if isinstance(exc, MiAssertInputError):
            raise
        raise ModelUnavailableError(
            f"model {name!r} could not be loaded: its weights are neither in the local Hugging "
            f"Face cache nor downloadable here ({type(exc).__name__}: {str(exc).splitlines()[0][:200]}). "
            f"Zoo models work offline: {', '.join(registry.available())}"
        ) from exc
