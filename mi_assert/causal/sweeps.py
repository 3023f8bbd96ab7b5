"""Activation-patching sweeps: every head / layer / position at once, in TransformerLens units.

``patching_sweep`` returns ``.values`` in the same layout and units as TransformerLens's
``transformer_lens.patching.get_act_patch_*`` functions: the raw metric (mean over prompts of
the per-prompt metric) after patching one cell's clean activation into the corrupted run.

================  ================  ==========================  ===================================
site              hook              positions="all"             positions="each"
================  ================  ==========================  ===================================
head_out          attn.hook_z       [n_layers, n_heads]         [n_layers, pos, n_heads]
head_q/k/v        attn.hook_q/k/v   [n_layers, n_heads]         [n_layers, pos, n_heads]
head_pattern      attn.hook_pattern [n_layers, n_heads]         [n_layers, n_heads, dest_pos]
resid_pre/mid/    hook_resid_*,     [n_layers]                  [n_layers, pos]
post, attn_out,   hook_attn_out,
mlp_out           hook_mlp_out
================  ================  ==========================  ===================================

(TransformerLens equivalents: ``get_act_patch_attn_head_out_all_pos`` / ``_by_pos``,
``get_act_patch_attn_head_{q,k,v,pattern}_all_pos`` / ``_by_pos``, ``get_act_patch_resid_pre``
/ ``resid_mid`` / ``attn_out`` / ``mlp_out``. TL has no all-positions variant for the
residual-like sites.)

Engines (``method="exact"``):

* ``kernel``: ``mi_assert.kernels.fast_patching_sweep(handle, clean, corrupted, metric, site)``
  (the fast kernel, where it supports the model: TransformerLens, the bridge and nnsight;
  :mod:`mi_assert.kernels.handles`).
* ``layered`` (TransformerLens models): for each layer, every patched variant of that layer is
  stacked in the batch and the forward pass *starts at that layer* from the cached corrupted
  residual (``HookedTransformer.forward(start_at_layer=...)``); when the metric reads one
  position, only that position is unembedded. Chunked to ``max_batch`` rows.
* ``generic`` (every backend, nnsight included): the variants of a layer are stacked in the
  batch and run in one full forward pass
  (:func:`mi_assert.backends.batching.run_stacked_variants`).

``engine="auto"`` tries kernel, then layered, then generic. All engines agree with
TransformerLens's loops to ≤ 1e-4 (fp32; tested).

``method="attribution"`` (attribution patching, Nanda 2023): one forward on clean, one
forward + backward on corrupted, then ``(clean_act - corrupted_act) · d metric / d act`` summed
over the patched slot, added to the corrupted metric so ``.values`` stay in TL units
(``.delta`` holds the linear estimate of ``patched - corrupted``). Weak spots: it is a
first-order estimate, so it is poor where the metric is non-linear in the activation —
saturated attention (softmax near 0/1: patterns and q/k patches are badly estimated), layer-0
MLPs (large, non-linear effects on the embedding), and large clean/corrupted differences.
AtP* (Kramár et al. 2024) fixes some of this; here ``recheck_top_k=k`` re-runs the top-k cells
(by |delta|) with exact patching and reports both (``.exact_values``, ``.rechecked``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor

from mi_assert.backends.base import ModelHandle
from mi_assert.backends.batching import run_stacked_variants
from mi_assert.causal.metrics import evaluate_metric, metric_for_prompts, metric_name
from mi_assert.errors import MiAssertInputError, suggest
from mi_assert.loading import resolve_model
from mi_assert.prompts import check_aligned
from mi_assert.shapes import SweepValues
from mi_assert.stats.options import check_count

Site = Literal["head_out", "resid_pre", "resid_mid", "resid_post", "attn_out", "mlp_out",
               "head_q", "head_k", "head_v", "head_pattern"]

#: site -> (hook kind, slot kind)
SITES: dict[str, tuple[str, str]] = {
    "head_out": ("attn.hook_z", "head"),
    "head_q": ("attn.hook_q", "head"),
    "head_k": ("attn.hook_k", "head"),
    "head_v": ("attn.hook_v", "head"),
    "head_pattern": ("attn.hook_pattern", "pattern"),
    "resid_pre": ("hook_resid_pre", "pos"),
    "resid_mid": ("hook_resid_mid", "pos"),
    "resid_post": ("hook_resid_post", "pos"),
    "attn_out": ("hook_attn_out", "pos"),
    "mlp_out": ("hook_mlp_out", "pos"),
}
ENGINES: tuple[str, ...] = ("auto", "generic", "layered", "kernel")
#: default memory budget for one stacked chunk (activations of the rows in flight)
DEFAULT_MEMORY_BUDGET = 1 << 30


@dataclass
class SweepResult:
    """A patching sweep's values (TL layout and units) with what is needed to read them."""

    values: SweepValues
    site: str
    method: str
    positions: str
    axes: tuple[str, ...]
    clean_value: float
    corrupted_value: float
    metric: str
    engine: str
    delta: Tensor | None = None
    exact_values: Tensor | None = None
    rechecked: list[tuple[int, ...]] = field(default_factory=list)
    seconds: float = 0.0

    def normalised(self) -> Tensor:
        """(value - corrupted) / (clean - corrupted): 1 = full recovery, 0 = none."""
        gap = self.clean_value - self.corrupted_value
        if abs(gap) < 1e-12:
            raise MiAssertInputError("clean and corrupted metrics are equal: normalised values are undefined")
        return (self.values - self.corrupted_value) / gap

    def top(self, k: int = 5, normalised: bool = True) -> list[tuple[tuple[int, ...], float]]:
        """The k cells with the largest (normalised) effect, as (index, value)."""
        vals = self.normalised() if normalised else self.values - self.corrupted_value
        flat = vals.flatten()
        order = torch.argsort(flat.abs(), descending=True)[:k]
        shape = tuple(vals.shape)
        return [(tuple(int(i) for i in np.unravel_index(int(o), shape)), float(flat[o])) for o in order]

    def to_figure(self, normalised: bool = True) -> dict[str, Any]:
        """Figure data for reports (kind "heatmap"; 1-d sweeps become one-row heatmaps)."""
        data = (self.normalised() if normalised else self.values).detach().cpu().float().numpy()
        ylabel, xlabel = (self.axes + ("",))[:2] if data.ndim <= 2 else (self.axes[0], "/".join(self.axes[1:]))
        if data.ndim == 1:
            data = data[None]
            ylabel, xlabel = "", self.axes[0]
        elif data.ndim == 3:
            data = data.reshape(data.shape[0], -1)
        what = "normalised recovery" if normalised else self.metric
        return {"kind": "heatmap", "data": data, "xlabel": xlabel, "ylabel": ylabel,
                "title": f"{self.method} patching of {self.site} ({self.positions} positions): {what}"}


# ----------------------------------------------------------------------------------------
# layout
# ----------------------------------------------------------------------------------------
def _check_site(handle: ModelHandle, site: str, positions: str) -> tuple[str, str]:
    if site not in SITES:
        raise MiAssertInputError(f"site {site!r} unknown.{suggest(site, list(SITES))} Allowed: {', '.join(SITES)}")
    if positions not in ("all", "each"):
        raise MiAssertInputError(f"positions={positions!r}: allowed 'all' (patch every position at once) or 'each'")
    if site == "mlp_out" and not handle.has_mlp:
        raise MiAssertInputError(f"site 'mlp_out': model {handle.spec!r} is attention-only (no MLPs)")
    return SITES[site]


def _axes(slot: str, positions: str) -> tuple[str, ...]:
    if slot == "head":
        return ("layer", "head") if positions == "all" else ("layer", "pos", "head")
    if slot == "pattern":
        return ("layer", "head") if positions == "all" else ("layer", "head", "dest_pos")
    return ("layer",) if positions == "all" else ("layer", "pos")


def _cells(slot: str, positions: str, n_heads: int, n_pos: int) -> list[tuple[int, ...]]:
    """Per-layer cell indices (without the layer axis), in TL's row-major output order."""
    if slot == "head":
        return [(h,) for h in range(n_heads)] if positions == "all" else \
            [(p, h) for p in range(n_pos) for h in range(n_heads)]
    if slot == "pattern":
        return [(h,) for h in range(n_heads)] if positions == "all" else \
            [(h, p) for h in range(n_heads) for p in range(n_pos)]
    return [()] if positions == "all" else [(p,) for p in range(n_pos)]


def _masks(slot: str, positions: str, cells: list[tuple[int, ...]], act_shape: tuple[int, ...],
           device: torch.device) -> Tensor:
    """Boolean masks [V, 1, *act_shape[1:]] (broadcast over d_head / key positions)."""
    rest = act_shape[1:]
    mask = torch.zeros((len(cells), 1, *rest), dtype=torch.bool)
    for v, cell in enumerate(cells):
        if slot == "head":  # act [B, pos, H, d]
            if positions == "all":
                mask[v, 0, :, cell[0]] = True
            else:
                mask[v, 0, cell[0], cell[1]] = True
        elif slot == "pattern":  # act [B, H, q, k]
            if positions == "all":
                mask[v, 0, cell[0]] = True
            else:
                mask[v, 0, cell[0], cell[1]] = True
        elif positions == "all":  # act [B, pos, d]
            mask[v, 0] = True
        else:
            mask[v, 0, cell[0]] = True
    return mask.to(device)


def _stacked_edit(source: Tensor, mask: Tensor) -> Callable[[Tensor], Tensor]:
    """Edit for V stacked variants: variant v takes ``source`` where ``mask[v]`` is set."""
    n_var = mask.shape[0]

    def edit(act: Tensor) -> Tensor:
        batch = act.shape[0] // n_var
        stacked = act.reshape(n_var, batch, *act.shape[1:])
        out = torch.where(mask, source.to(act.dtype)[None], stacked)
        return out.reshape(act.shape)

    return edit


def _masked_edit(source: Tensor, mask: Tensor) -> Callable[[Tensor], Tensor]:
    """Edit for one variant (``mask`` = ``mask[v]``): ``source`` where the mask is set."""

    def edit(act: Tensor) -> Tensor:
        return torch.where(mask, source.to(act.dtype), act)

    return edit


# ----------------------------------------------------------------------------------------
# engines
# ----------------------------------------------------------------------------------------
def _metric_means(metric: Callable[[Tensor], Tensor], logits: Tensor, n_var: int, batch: int,
                  at_position: bool) -> list[float]:
    out = []
    for v in range(n_var):
        sl = logits[v * batch:(v + 1) * batch]
        vals = metric.at_position(sl) if at_position else evaluate_metric(metric, sl, batch)  # type: ignore[attr-defined]
        out.append(float(vals.float().mean()))
    return out


def _single_position(metric: Any, handle: ModelHandle) -> int | None:
    pos = getattr(metric, "position", None)
    if isinstance(pos, int) and callable(getattr(metric, "at_position", None)):
        return pos
    return None


def _rows_per_chunk(handle: ModelHandle, batch: int, n_pos: int, max_batch: int | None,
                    full_logits: bool) -> int:
    """How many prompt rows to run at once: ``max_batch`` or a memory estimate."""
    if max_batch is not None:
        if max_batch < batch:
            raise MiAssertInputError(f"max_batch={max_batch} is smaller than the prompt batch ({batch})")
        return int(max_batch)
    elt = torch.finfo(handle.dtype).bits // 8 if handle.dtype.is_floating_point else 4
    per_row = n_pos * (handle.d_model * 16 + handle.n_heads * n_pos * 3 +
                       (handle.d_vocab if full_logits else 0)) * elt
    if handle.device.type == "cuda":  # pragma: no cover - GPU only
        free, _ = torch.cuda.mem_get_info(handle.device)
        budget = int(free * 0.5)
    else:
        budget = DEFAULT_MEMORY_BUDGET
    return max(batch, budget // max(per_row, 1))


def _tl_name(handle: ModelHandle, name: str) -> str:
    fn = getattr(handle, "_tl_name", None)
    return fn(name) if fn is not None else name


def _layered_available(handle: ModelHandle) -> bool:
    return handle.backend == "transformer_lens" and hasattr(handle.model, "blocks")


def _exact_sweep(handle: ModelHandle, clean: Tensor, corrupted: Tensor, metric: Any, site: str,
                 positions: str, engine: str, max_batch: int | None,
                 only: list[tuple[int, ...]] | None = None,
                 baseline: dict[str, float] | None = None) -> tuple[Tensor, str]:
    """Exact patching of every cell (or the cells in ``only``, full index incl. layer)."""
    kind, slot = SITES[site]
    batch, n_pos = corrupted.shape
    n_layers, n_heads = handle.n_layers, handle.n_heads
    layered = engine == "layered" or (engine == "auto" and _layered_available(handle))
    if engine == "layered" and not _layered_available(handle):
        raise MiAssertInputError(f"engine='layered' needs a TransformerLens model; {handle.spec!r} is {handle.backend}")
    hooks = [f"blocks.{layer}.{kind}" for layer in range(n_layers)]
    clean_logits, clean_cache = handle.run_with_cache(clean, hooks)
    resid_hooks = [f"blocks.{layer}.hook_resid_pre" for layer in range(n_layers)] if layered else []
    corr_logits, resid_cache = handle.run_with_cache(corrupted, resid_hooks)
    if baseline is not None:  # the unpatched runs double as the clean/corrupted baselines
        baseline["clean"] = float(evaluate_metric(metric, clean_logits, batch).mean())
        baseline["corrupted"] = float(evaluate_metric(metric, corr_logits, batch).mean())
    position = _single_position(metric, handle)
    model = handle.model
    softcap = float(getattr(getattr(model, "cfg", None), "output_logits_soft_cap", -1.0) or -1.0)
    unembed_one = layered and position is not None and softcap <= 0
    rows = _rows_per_chunk(handle, batch, n_pos, max_batch, full_logits=not unembed_one)
    per_chunk = max(1, rows // batch)
    out_shape = (n_layers, *[{"head": n_heads, "pos": n_pos, "dest_pos": n_pos}[a]
                             for a in _axes(slot, positions)[1:]])
    values = torch.full(out_shape, float("nan"))
    for layer in range(n_layers):
        cells = _cells(slot, positions, n_heads, n_pos)
        if only is not None:
            cells = [c[1:] for c in only if c[0] == layer]
        if not cells:
            continue
        hook = f"blocks.{layer}.{kind}"
        source = clean_cache[hook]
        for start in range(0, len(cells), per_chunk):
            chunk = cells[start:start + per_chunk]
            mask = _masks(slot, positions, chunk, tuple(source.shape), source.device)
            n_var = len(chunk)
            with torch.no_grad():
                if layered:
                    resid = resid_cache[f"blocks.{layer}.hook_resid_pre"].repeat(n_var, 1, 1)
                    edit = _stacked_edit(source, mask)
                    fwd = [(_tl_name(handle, hook), lambda act, hook, _e=edit: _e(act))]
                    if unembed_one:
                        final = model.run_with_hooks(resid, start_at_layer=layer,
                                                     stop_at_layer=n_layers, fwd_hooks=fwd)
                        assert position is not None  # unembed_one implies a metric position
                        x = final[:, position % n_pos][:, None]
                        if model.cfg.normalization_type is not None:
                            x = model.ln_final(x)
                        logits = model.unembed(x)[:, 0]
                        means = _metric_means(metric, logits, n_var, batch, at_position=True)
                    else:
                        logits = model.run_with_hooks(resid, start_at_layer=layer, fwd_hooks=fwd,
                                                      return_type="logits")
                        means = _metric_means(metric, logits, n_var, batch, at_position=False)
                else:
                    variants = [{hook: [_masked_edit(source, mask[v])]} for v in range(n_var)]
                    logits = run_stacked_variants(handle, corrupted, variants)
                    means = _metric_means(metric, logits.flatten(0, 1), n_var, batch,
                                          at_position=False)
            for cell, value in zip(chunk, means, strict=True):
                values[(layer,) + tuple(cell)] = value
    return values, ("layered" if layered else "generic")


def _try_kernel(handle: ModelHandle, clean: Tensor, corrupted: Tensor, metric: Any, site: str,
                positions: str) -> Tensor | None:
    """The fast kernel, where it supports the handle's model and the layout."""
    if positions != ("all" if SITES[site][1] != "pos" else "each"):
        return None  # the kernel computes TL's default layout for each site only
    from mi_assert.kernels import fast_patching_sweep

    out = fast_patching_sweep(handle, clean, corrupted, metric, site)
    return None if out is None else out.detach().float().cpu()


# ----------------------------------------------------------------------------------------
# attribution patching
# ----------------------------------------------------------------------------------------
def _attribution(handle: ModelHandle, clean: Tensor, corrupted: Tensor, metric: Any, site: str,
                 positions: str) -> Tensor:
    kind, slot = SITES[site]
    hooks = [f"blocks.{layer}.{kind}" for layer in range(handle.n_layers)]
    _, clean_cache = handle.run_with_cache(clean, hooks)
    batch = corrupted.shape[0]

    def mean_metric(logits: Tensor) -> Tensor:
        return evaluate_metric(metric, logits, batch).mean()

    _, corr_cache, grads = handle.gradients(corrupted, hooks, mean_metric)
    layers = []
    for hook in hooks:
        contrib = (clean_cache[hook].float() - corr_cache[hook].float()) * grads[hook].float()
        if slot == "head":  # [B, pos, H, d] -> [H] or [pos, H]
            per = contrib.sum(dim=(0, 3))
            layers.append(per.sum(0) if positions == "all" else per)
        elif slot == "pattern":  # [B, H, q, k] -> [H] or [H, q]
            per = contrib.sum(dim=(0, 3))
            layers.append(per.sum(1) if positions == "all" else per)
        else:  # [B, pos, d] -> [] or [pos]
            per = contrib.sum(dim=(0, 2))
            layers.append(per.sum() if positions == "all" else per)
    return torch.stack(layers).cpu()


# ----------------------------------------------------------------------------------------
# public entry points
# ----------------------------------------------------------------------------------------
def patching_sweep(
    model: Any,
    clean: Any,
    corrupted: Any = None,
    metric: Any = "logit_diff",
    site: Site = "head_out",
    method: Literal["exact", "attribution"] = "exact",
    positions: Literal["all", "each"] = "all",
    *,
    engine: Literal["auto", "generic", "layered", "kernel"] = "auto",
    max_batch: int | None = None,
    recheck_top_k: int = 0,
    direction: Literal["denoise", "noise"] = "denoise",
) -> SweepResult:
    """Patch every cell of ``site`` and return the metric in TransformerLens's layout/units.

    Args:
        model: any model :func:`mi_assert.as_handle` accepts.
        clean, corrupted: aligned token batches ``[batch, pos]`` (or strings), or a
            :class:`~mi_assert.prompts.PromptSet` as ``clean`` with ``corrupted=None``.
        metric: ``metric(logits) -> Tensor[batch]`` (see :mod:`mi_assert.causal.metrics`), or
            ``"logit_diff"``/``"logprob"``/``"prob"`` built from a PromptSet's answer ids.
        site: see the module docstring's table.
        method: ``"exact"`` (activation patching) or ``"attribution"`` (linear estimate).
        positions: ``"all"`` (patch all positions of a cell at once) or ``"each"``.
        engine: ``"auto"`` | ``"generic"`` | ``"layered"`` | ``"kernel"`` (module docstring).
        max_batch: most prompt rows in one stacked forward (default: a 1 GiB estimate on CPU,
            half the free memory on GPU).
        recheck_top_k: with ``method="attribution"``, re-check the top-k cells exactly.
        direction: ``"denoise"`` (clean into corrupted, TL's convention) or ``"noise"``
            (corrupted activations into the clean run).
    """
    import time

    handle = resolve_model(model)
    clean_t, corrupted_t, metric_fn = _resolve_inputs(handle, clean, corrupted, metric)
    if direction not in ("denoise", "noise"):
        raise MiAssertInputError(f"direction={direction!r}: allowed 'denoise' or 'noise'")
    if direction == "noise":
        clean_t, corrupted_t = corrupted_t, clean_t
    if engine not in ENGINES:
        raise MiAssertInputError(f"engine={engine!r}: allowed {', '.join(ENGINES)}")
    if method not in ("exact", "attribution"):
        raise MiAssertInputError(f"method={method!r}: allowed 'exact' or 'attribution'")
    if max_batch is not None:
        check_count(max_batch, "max_batch")
    check_count(recheck_top_k, "recheck_top_k", minimum=0)
    kind, slot = _check_site(handle, site, positions)
    started = time.perf_counter()
    batch = corrupted_t.shape[0]
    baseline: dict[str, float] = {}

    def baselines() -> tuple[float, float]:
        if not baseline:
            for key, tokens in (("clean", clean_t), ("corrupted", corrupted_t)):
                baseline[key] = float(evaluate_metric(metric_fn, handle.forward(tokens), batch).mean())
        return baseline["clean"], baseline["corrupted"]

    delta: Tensor | None = None
    exact_values: Tensor | None = None
    rechecked: list[tuple[int, ...]] = []
    if method == "exact":
        values: Tensor | None = None
        used = "kernel"
        if engine in ("auto", "kernel"):
            values = _try_kernel(handle, clean_t, corrupted_t, metric_fn, site, positions)
            if values is None and engine == "kernel":
                raise MiAssertInputError(
                    "engine='kernel': mi_assert.kernels.fast_patching_sweep is unavailable or "
                    f"declined site={site!r} positions={positions!r} on {handle.device}; use "
                    "engine='auto'"
                )
        if values is None:
            values, used = _exact_sweep(handle, clean_t, corrupted_t, metric_fn, site, positions,
                                        "auto" if engine == "kernel" else engine, max_batch,
                                        baseline=baseline)
        clean_value, corrupted_value = baselines()
    else:
        used = "attribution"
        clean_value, corrupted_value = baselines()
        delta = _attribution(handle, clean_t, corrupted_t, metric_fn, site, positions)
        values = corrupted_value + delta
        if recheck_top_k:
            flat = delta.abs().flatten()
            order = torch.argsort(flat, descending=True)[: int(recheck_top_k)]
            rechecked = [tuple(int(i) for i in np.unravel_index(int(o), tuple(delta.shape)))
                         for o in order]
            exact_values, _ = _exact_sweep(handle, clean_t, corrupted_t, metric_fn, site, positions,
                                           "auto", max_batch, only=rechecked)
    return SweepResult(
        values=values, site=site, method=method, positions=positions,
        axes=_axes(slot, positions), clean_value=clean_value, corrupted_value=corrupted_value,
        metric=metric_name(metric_fn), engine=used, delta=delta, exact_values=exact_values,
        rechecked=rechecked, seconds=time.perf_counter() - started,
    )


def attribution_sweep(model: Any, clean: Any, corrupted: Any = None, metric: Any = "logit_diff",
                      site: Site = "head_out", positions: Literal["all", "each"] = "all",
                      recheck_top_k: int = 0) -> SweepResult:
    """Shorthand for ``patching_sweep(..., method="attribution")``."""
    return patching_sweep(model, clean, corrupted, metric, site, "attribution", positions,
                          recheck_top_k=recheck_top_k)


def _resolve_inputs(handle: ModelHandle, clean: Any, corrupted: Any, metric: Any
                    ) -> tuple[Tensor, Tensor, Any]:
    from mi_assert.prompts import PromptSet

    prompts = None
    if isinstance(clean, PromptSet):
        prompts = clean
        if corrupted is not None:
            raise MiAssertInputError("pass either a PromptSet as clean, or clean and corrupted token batches, not both")
        clean, corrupted = clean.clean, clean.corrupted
        if corrupted is None:
            raise MiAssertInputError("the PromptSet has no corrupted prompts; patching needs clean/corrupted pairs")
    if corrupted is None:
        raise MiAssertInputError("patching needs corrupted prompts aligned with the clean ones")
    clean_t, corrupted_t = handle.to_tokens(clean), handle.to_tokens(corrupted)
    check_aligned(clean_t, corrupted_t)
    return clean_t, corrupted_t, metric_for_prompts(metric, prompts, model=handle)
