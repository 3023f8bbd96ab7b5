"""``edge_sweep``: score every edge of a model's graph by exact patching, EAP or EAP-IG."""

from __future__ import annotations

import functools
import time
from collections.abc import Sequence
from typing import Any, Literal

from mi_assert.backends.base import eval_mode
from mi_assert.causal.metrics import evaluate_metric, metric_name
from mi_assert.causal.sweeps import _resolve_inputs
from mi_assert.edges.eap import (
    attribution_run,
    contract_fast,
    eap_edge_effects,
    eap_ig_edge_effects,
    fast_path_supported,
)
from mi_assert.edges.eap_kernel import kernel_attribution, kernel_attribution_reason
from mi_assert.edges.exact import exact_edge_effects, rows_per_forward
from mi_assert.edges.exact_kernel import kernel_exact_edge_effects
from mi_assert.edges.graph import Edge, EdgeGraph
from mi_assert.edges.readout import MetricReadout
from mi_assert.edges.scores import EdgeScores
from mi_assert.edges.senders import record_run
from mi_assert.edges.tl_model import hooked_transformer, split_inputs
from mi_assert.errors import MiAssertInputError, check_finite
from mi_assert.kernels import checked_functional_model, model_support_reason
from mi_assert.loading import resolve_model

METHODS: tuple[str, ...] = ("exact", "eap", "eap_ig")
#: "kernel": the functional forward (exact: one head or MLP plus the layers after it per edge;
#: EAP: no hooks), "hooks": TransformerLens forwards with hooks (exact: from the receiver's
#: layer), "auto": the kernel where the kernels support the model, else hooks
ENGINES: tuple[str, ...] = ("auto", "kernel", "hooks")
#: integration steps of ``method="eap_ig"`` unless ``steps`` says otherwise (Hanna et al. 2024
#: use 5 to 20)
EAP_IG_STEPS = 5


def edge_sweep(
    model: Any,
    clean: Any,
    corrupted: Any = None,
    metric: Any = "logit_diff",
    method: Literal["exact", "eap", "eap_ig"] = "exact",
    *,
    edges: Sequence[Edge | str] | None = None,
    max_batch: int | None = None,
    steps: int | None = None,
    engine: Literal["auto", "kernel", "hooks"] = "auto",
) -> EdgeScores:
    """Score edges ``sender -> receiver input`` by denoising path patching (``exact``) or its
    first-order estimate (``eap``) or its integrated-gradients form (``eap_ig``); see
    :mod:`mi_assert.edges.exact` and :mod:`.eap`.

    Args:
        model: a TransformerLens ``HookedTransformer``, its handle, an nnsight handle wrapping
            one, or a zoo spec / path that loads as one.
        clean, corrupted: aligned token batches ``[batch, pos]`` (or strings), or a
            :class:`~mi_assert.prompts.PromptSet` as ``clean`` with ``corrupted=None``.
        metric: ``metric(logits) -> Tensor[batch]`` (:mod:`mi_assert.causal.metrics`), or
            ``"logit_diff"`` / ``"logprob"`` / ``"prob"`` built from a PromptSet's answers.
        method: ``"exact"`` (one patched run per edge, stacked), ``"eap"`` (one backward) or
            ``"eap_ig"`` (``steps`` backwards along the corrupted-to-clean embedding path).
        edges: score only these edges (names like ``"L0H0->L1H0.k"`` or :class:`Edge`);
            default every edge of :meth:`EdgeGraph.from_handle`, in graph order.
        max_batch: most prompt rows in one stacked forward (exact; default: a memory estimate,
            32-48 MiB of activations on CPU, 60% of the free memory on GPU).
        steps: integration steps of ``eap_ig`` (an int >= 1, default :data:`EAP_IG_STEPS`;
            ``steps=1`` is EAP); only ``eap_ig`` takes it.
        engine: :data:`ENGINES`: ``"kernel"`` runs on the functional forward
            (:mod:`mi_assert.edges.exact_kernel`, :mod:`.eap_kernel`; supported models only),
            ``"hooks"`` on TransformerLens forwards with hooks (:mod:`.exact`, :mod:`.eap`),
            ``"auto"`` the kernel where it applies. Both agree to float32 rounding.

    Returns:
        :class:`EdgeScores` with ``values [n_edges]`` and ``per_prompt [n_edges, batch]`` in
        metric units (``metric(patched) - metric(corrupted)``).
    """
    started = time.perf_counter()
    if method not in METHODS:
        raise MiAssertInputError(f"method={method!r}: allowed {', '.join(repr(m) for m in METHODS)}")
    if max_batch is not None and (not isinstance(max_batch, int) or isinstance(max_batch, bool)
                                  or max_batch < 1):
        raise MiAssertInputError(f"max_batch must be an int >= 1 (prompt rows per forward); got {max_batch!r}")
    n_steps = _checked_steps(method, steps)
    if engine not in ENGINES:
        raise MiAssertInputError(f"engine={engine!r}: allowed {', '.join(repr(e) for e in ENGINES)}")
    handle = resolve_model(model)
    tl_model = hooked_transformer(handle)
    clean_t, corrupted_t, metric_fn = _resolve_inputs(handle, clean, corrupted, metric)
    graph = _graph(handle.n_layers, handle.n_heads, handle.has_mlp, handle.parallel_attn_mlp)
    selected = _selected_edges(graph, edges)
    batch, n_pos = corrupted_t.shape
    with eval_mode([tl_model]):
        fm = None if engine == "hooks" else checked_functional_model(tl_model, corrupted_t)
        if fm is None and engine == "kernel":
            reason = (model_support_reason(tl_model)
                      or "the functional forward did not reproduce its logits")
            raise MiAssertInputError(f"engine='kernel' cannot run this model: {reason}; use "
                                     "engine='hooks' or engine='auto'")
        if method != "exact" and fm is not None and kernel_attribution_reason(fm) is not None:
            if engine == "kernel":
                raise MiAssertInputError(f"engine='kernel' cannot run {method} on this model: "
                                         f"{kernel_attribution_reason(fm)}; use engine='auto'")
            fm = None
        if method != "exact" and fm is not None:
            found = kernel_attribution(fm, graph, selected, clean_t, corrupted_t, metric_fn,
                                       max(n_steps, 1))
            check_finite("sender outputs", found.deltas)
            per_prompt = contract_fast(graph, selected, found.deltas, found.grads)
            clean_pp, corrupted_pp = found.clean_per_prompt, found.corrupted_per_prompt
        else:
            per_prompt, clean_pp, corrupted_pp = _from_recorded_runs(
                tl_model, fm, graph, selected, clean_t, corrupted_t, metric_fn, method, n_steps,
                max_batch)
    used = "kernel" if fm is not None else "hooks"
    check_finite("edge scores", per_prompt)
    return EdgeScores(graph=graph, edges=tuple(selected), values=per_prompt.mean(dim=1),
                      per_prompt=per_prompt, clean_per_prompt=clean_pp,
                      corrupted_per_prompt=corrupted_pp, method=method,
                      metric=metric_name(metric_fn), seconds=time.perf_counter() - started,
                      engine=used)


def _from_recorded_runs(model: Any, fm: Any, graph: EdgeGraph, edges: list[Edge], clean: Any,
                corrupted: Any, metric: Any, method: str, n_steps: int,
                max_batch: int | None) -> tuple[Any, Any, Any]:
    """Edge scores ``[n_edges, batch]`` and the clean and corrupted metric ``[batch]``, from
    clean and corrupted TransformerLens runs recorded with hooks: exact patching on the kernel
    when ``fm`` is given, else on TL forwards with hooks, and EAP / EAP-IG on TL hooks."""
    batch, n_pos = corrupted.shape
    clean_run = record_run(model, graph, clean)
    clean_pp = evaluate_metric(metric, clean_run.logits, batch).cpu()
    fast = method != "exact" and fast_path_supported(model)
    if fast:  # one corrupted forward + backward: corrupted outputs and the gradients
        grad_run = attribution_run(model, graph, edges, corrupted, metric, max(n_steps, 1),
                                   clean_run.outputs[0])
        corrupted_logits, corrupted_outputs = grad_run.logits, grad_run.outputs
    else:
        corrupted_run = record_run(model, graph, corrupted)
        corrupted_logits, corrupted_outputs = corrupted_run.logits, corrupted_run.outputs
    deltas = clean_run.outputs - corrupted_outputs  # [n_senders, batch, pos, d_model]
    check_finite("sender outputs", deltas)
    corrupted_pp = evaluate_metric(metric, corrupted_logits, batch).cpu()
    if fast:
        per_prompt = contract_fast(graph, edges, deltas, grad_run.grads)
    elif method == "exact" and fm is not None:
        per_prompt = kernel_exact_edge_effects(fm, graph, edges, deltas, corrupted, metric,
                                               max_rows=max_batch)
    elif method == "exact":
        readout = MetricReadout(model, metric, batch)
        rows = rows_per_forward(model, batch, n_pos, readout.full_logits, max_batch)
        per_prompt = exact_edge_effects(model, graph, edges, deltas, corrupted_run, readout, rows)
    elif method == "eap":  # fallback: split inputs (see eap.fast_path_supported)
        with split_inputs(model):
            per_prompt = eap_edge_effects(model, graph, edges, deltas, corrupted, metric)
    else:
        with split_inputs(model):
            per_prompt = eap_ig_edge_effects(model, graph, edges, deltas, corrupted, metric,
                                             corrupted_outputs[0], n_steps)
    return per_prompt, clean_pp, corrupted_pp


@functools.lru_cache(maxsize=16)
def _graph(n_layers: int, n_heads: int, has_mlp: bool, parallel_attn_mlp: bool) -> EdgeGraph:
    """:meth:`EdgeGraph.from_handle`'s graph, built once per shape (graphs are frozen; building
    one lists every edge, which costs about a forward pass of a small model)."""
    return EdgeGraph(n_layers, n_heads, has_mlp, parallel_attn_mlp)


def _checked_steps(method: str, steps: Any) -> int:
    """The integration steps of ``eap_ig`` (0 for the other methods, which take none)."""
    if method != "eap_ig":
        if steps is not None:
            raise MiAssertInputError(f"steps={steps!r} is for method='eap_ig' (integration "
                                     f"steps); method={method!r} takes no steps")
        return 0
    if steps is None:
        return EAP_IG_STEPS
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise MiAssertInputError(f"steps must be an int >= 1 (integration steps of eap_ig; 1 is "
                                 f"EAP, Hanna et al. use 5 to 20); got {steps!r}")
    return steps


def _selected_edges(graph: EdgeGraph, edges: Sequence[Edge | str] | None) -> list[Edge]:
    if edges is None:
        return list(graph.edges)
    if isinstance(edges, (str, Edge)):
        edges = [edges]
    out = [graph.edge(e) for e in edges]
    seen: set[Edge] = set()
    for edge in out:
        if edge in seen:
            raise MiAssertInputError(f"edge {edge.name!r} is listed twice; list each edge once")
        seen.add(edge)
    if not out:
        raise MiAssertInputError("edges=[] selects nothing; pass None for every edge or a "
                                 "non-empty list of edge names")
    return out

