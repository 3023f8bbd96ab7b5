"""``load_model``: one entry point for zoo names, local checkpoints and hub names."""

from __future__ import annotations

import inspect
import json
import os
import socket
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlparse

import torch

from mi_assert.backends import BACKENDS, ModelHandle, as_handle
from mi_assert.errors import MiAssertInputError, ModelUnavailableError, suggest
from mi_assert.zoo import registry

#: load_model's own keyword arguments (near misses of these are offered for unknown keywords)
LOAD_MODEL_OPTIONS: tuple[str, ...] = ("backend", "device", "dtype", "seed", "debug")

#: seconds the hub reachability probe waits for a TCP connection to the hub's host
HUB_PROBE_TIMEOUT_S = 1.5

_PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")

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
    arguments pass to the underlying loader: a planted zoo model's builder options (e.g.
    ``noise``), or for Hugging Face models ``device_map``, ``n_devices``, ``max_memory``,
    ``revision``, ``trust_remote_code``; trained zoo checkpoints take none. Any other keyword
    raises :class:`MiAssertInputError` naming the allowed ones.

    A hub name that is not in the local Hugging Face cache fails at once with
    :class:`ModelUnavailableError` when the hub is unreachable (``HF_HUB_OFFLINE=1``, or no
    connection within :data:`HUB_PROBE_TIMEOUT_S`) instead of waiting out the hub client's retries.
    """
    if not isinstance(name_or_path, (str, Path)):
        raise MiAssertInputError(
            f"load_model takes a model name or path (a str or Path); got {type(name_or_path).__name__}. "
            "Give a zoo name, a local checkpoint folder or a hub name; wrap a model object "
            "you already have with mi_assert.as_handle(model)"
        )
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
    check_load_kwargs(kwargs, zoo_load_options(entry), f"zoo model {entry.name!r} ({entry.kind})")
    if entry.kind == "hf":
        folder = entry.hf_folder(parsed.step)
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

            check_load_kwargs(kwargs, hf_loading.PASSTHROUGH_KWARGS, "a Hugging Face model")
            return hf_loading.load_hf(str(path), backend or "nnsight", dev, dt, kwargs)
        if "d_model" in cfg:
            check_load_kwargs(kwargs, (), f"the TransformerLens checkpoint {str(path)!r}")
            model, meta = load_native_tl(path)
            return wrap_tl_model(_place(model, dev, dt), str(path), backend or "transformer_lens", meta)
    raise MiAssertInputError(
        f"{path} is not a checkpoint mi-assert can read: expected a folder with config.json "
        "(a Hugging Face save_pretrained folder, or an mi-assert TL checkpoint)"
    )


def _load_hub(name: str, backend: str, dev: torch.device, dt: torch.dtype | None,
              kwargs: dict[str, Any]) -> ModelHandle:
    from mi_assert.backends import hf_loading

    check_load_kwargs(kwargs, hf_loading.PASSTHROUGH_KWARGS, "a Hugging Face model")
    refuse_unreachable_hub(name, backend, kwargs.get("revision"))
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


# ----- keyword arguments -------------------------------------------------------------------------
def zoo_load_options(entry: registry.ZooEntry) -> tuple[str, ...]:
    """The extra keywords ``load_model`` takes for a zoo model: a planted model's builder options
    (its weights are built from them); none for trained checkpoints, whose weights fix the
    architecture; the Hugging Face loader's for HF folders."""
    if entry.kind == "planted":
        from mi_assert.zoo.planted import build_planted_induction

        return tuple(p for p in inspect.signature(build_planted_induction).parameters if p != "seed")
    if entry.kind == "hf":
        from mi_assert.backends.hf_loading import PASSTHROUGH_KWARGS

        return PASSTHROUGH_KWARGS
    return ()


def check_load_kwargs(kwargs: dict[str, Any], allowed: Sequence[str], what: str) -> None:
    """Refuse keywords ``load_model`` would otherwise hand to a loader that does not take them."""
    unknown = sorted(set(kwargs) - set(allowed))
    if not unknown:
        return
    hints = "".join(suggest(k, [*allowed, *LOAD_MODEL_OPTIONS]) for k in unknown)
    raise MiAssertInputError(
        f"load_model got unknown keyword argument(s) {', '.join(repr(k) for k in unknown)} for "
        f"{what}.{hints} Extra keywords allowed: {', '.join(allowed) if allowed else 'none'} "
        f"(besides load_model's own: {', '.join(LOAD_MODEL_OPTIONS)})"
    )


# ----- hub reachability --------------------------------------------------------------------------
def hub_offline_flag() -> bool:
    """Whether the user declared the machine offline (``HF_HUB_OFFLINE`` / ``TRANSFORMERS_OFFLINE``)."""
    from huggingface_hub import constants

    declared = (os.environ.get(v, "").strip().lower() for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))
    return bool(constants.HF_HUB_OFFLINE) or any(v in ("1", "true", "yes", "on") for v in declared)


def hub_address() -> tuple[str, int]:
    """The hub's host and port (``HF_ENDPOINT`` when set, else huggingface.co:443)."""
    from huggingface_hub import constants

    url = urlparse(constants.ENDPOINT)
    return url.hostname or "huggingface.co", url.port or (80 if url.scheme == "http" else 443)


def hub_reachable(timeout: float = HUB_PROBE_TIMEOUT_S) -> bool:
    """Whether a TCP connection to the hub opens within ``timeout`` seconds.

    The connect runs in a daemon thread so a DNS lookup that hangs (which ignores socket
    timeouts) cannot hold the caller. Behind a proxy the direct connect proves nothing, so the
    hub counts as reachable and the hub client decides.
    """
    if any(os.environ.get(v) for v in _PROXY_VARIABLES):
        return True
    result: list[bool] = []

    def connect() -> None:
        try:
            socket.create_connection(hub_address(), timeout=timeout).close()
            result.append(True)
        except OSError:
            result.append(False)

    probe = threading.Thread(target=connect, daemon=True)
    probe.start()
    probe.join(timeout + 0.5)
    return bool(result and result[0])


def in_hub_cache(name: str, backend: str, revision: str | None = None) -> bool:
    """Whether ``name``'s config is in the local Hugging Face cache (under TransformerLens's
    official name too, since TransformerLens accepts aliases such as ``gpt2-small``)."""
    from huggingface_hub import try_to_load_from_cache

    candidates = [name]
    if backend == "transformer_lens":
        try:
            from transformer_lens.loading_from_pretrained import get_official_model_name

            candidates.append(get_official_model_name(name))
        except Exception:  # noqa: BLE001 - not a TransformerLens name: only the name itself counts
            pass
    for repo in candidates:
        try:
            if isinstance(try_to_load_from_cache(repo, "config.json", revision=revision), str):
                return True
        except ValueError:  # not a valid repo id
            continue
    return False


def refuse_unreachable_hub(name: str, backend: str, revision: str | None = None) -> None:
    """Fail at once when ``name`` is not cached and the hub cannot be reached, instead of
    waiting out the hub client's retries (tens of seconds)."""
    declared_offline = hub_offline_flag()
    if not declared_offline and hub_reachable():
        return
    if in_hub_cache(name, backend, revision):
        return
    host, port = hub_address()
    why = ("HF_HUB_OFFLINE is set" if declared_offline else
           f"cannot connect to {host}:{port}; probe timeout {HUB_PROBE_TIMEOUT_S:g} s")
    tip = ("" if declared_offline else
           " On a machine without network, set HF_HUB_OFFLINE=1 to make this check instant.")
    raise ModelUnavailableError(
        f"model {name!r} could not be loaded: it is not in the local Hugging Face cache and the "
        f"hub is unreachable ({why}), so it cannot be downloaded. Zoo models work offline: "
        f"{', '.join(registry.available())}.{tip}"
    )
