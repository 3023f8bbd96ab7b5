"""Feature dashboards: what one SAE latent does, in the SAE-Vis / Neuronpedia layout.

:func:`measure_feature_dashboard` measures (no verdict) three things about latent ``feature``
over a set of prompts, from one forward pass to the SAE's hook:

* **top-activating contexts**: the ``k`` token positions where the latent is largest (BOS left
  out), each as a window of tokens around it with every token's activation, sorted by
  activation; and a few examples from each quantile band of the firing activations (as
  SAE-Vis shows), so a reader sees what weaker firing looks like;
* **the activation histogram** over the counted (non-BOS) tokens where the latent fires
  (activation > 0), and the firing density: the share of counted tokens with activation > 0;
* **direct logit effect**: the latent's decoder row times the unembedding ``W_U`` (the direct
  path through the unembedding; the final LayerNorm's per-token scale is left out, as SAE-Vis
  does, so the values rank tokens but are not logit differences of any one prompt). The
  ``n_logits`` most boosted and most suppressed output tokens.

The result is plain data (:class:`FeatureDashboard`); :meth:`FeatureDashboard.figure` is the
``"feature_dashboard"`` figure spec the HTML report draws. ``sae-dashboard`` is not used: its
releases pin ``transformer-lens < 3`` and ``transformers < 4.57``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from mi_assert.errors import MiAssertInputError
from mi_assert.loading import resolve_model
from mi_assert.sae import metrics as M

#: defaults: contexts shown, tokens before / after the activating token
DEFAULT_K = 10
DEFAULT_WINDOW = (8, 3)
LOGIT_PATH = ("decoder row @ W_U: the latent's direct path to the logits through the "
              "unembedding, without the final LayerNorm's per-token scale (or its centering)")
LOGIT_PATH_Z = ("decoder row @ W_O @ W_U: the latent's direct path through its layer's "
                "attention output and the unembedding, without the final LayerNorm's per-token "
                "scale (or its centering)")

Token = str | int


@dataclass(frozen=True)
class DashboardContext:
    """One token position and the window of tokens around it.

    ``tokens`` and ``acts`` cover the window (``acts[i]`` is the latent's activation on
    ``tokens[i]``; None at BOS positions, which are not counted); ``focus`` is the index in the
    window of the position itself; ``prompt`` and ``position`` locate it in the prompts.
    """

    prompt: int
    position: int
    activation: float
    tokens: tuple[Token, ...]
    acts: tuple[float | None, ...]
    focus: int


@dataclass(frozen=True)
class QuantileGroup:
    """Examples from one band of the firing activations: quantiles ``[q_low, q_high]`` of the
    activations on firing tokens, activations ``[low, high]``."""

    label: str
    q_low: float
    q_high: float
    low: float
    high: float
    contexts: tuple[DashboardContext, ...]


@dataclass(frozen=True)
class FeatureDashboard:
    """What :func:`measure_feature_dashboard` measured (plain data, JSON-able with ``to_dict``).

    ``n_tokens``: counted (non-BOS) tokens; ``n_firing``: those with activation > 0;
    ``density = n_firing / n_tokens``. ``histogram``: ``edges`` (``n_bins + 1``) and
    ``counts`` of the activations on firing tokens (the counts sum to ``n_firing``).
    ``boosted`` / ``suppressed``: ``(token, value)`` of the largest / smallest entries of the
    direct logit effect (``logit_path`` says what was computed; empty with ``logit_note`` when
    it could not be). Tokens are strings from the model's tokenizer, or ids
    (``token_ids=True``) for models without one.
    """

    feature: int
    hook: str
    n_prompts: int
    n_tokens: int
    n_firing: int
    density: float
    max_activation: float
    contexts: tuple[DashboardContext, ...]
    quantile_groups: tuple[QuantileGroup, ...]
    histogram: dict[str, list[float] | list[int]]
    boosted: tuple[tuple[Token, float], ...] = ()
    suppressed: tuple[tuple[Token, float], ...] = ()
    logit_path: str = LOGIT_PATH
    logit_note: str = ""
    token_ids: bool = False
    window: tuple[int, int] = DEFAULT_WINDOW
    sources: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["boosted"] = [list(p) for p in self.boosted]
        out["suppressed"] = [list(p) for p in self.suppressed]
        return out

    def figure(self, title: str | None = None) -> dict[str, Any]:
        """The ``"feature_dashboard"`` figure spec (for ``Evidence.figures``)."""
        return {"kind": "feature_dashboard", "data": self.to_dict(),
                "title": title or f"latent {self.feature} at {self.hook}: feature dashboard"}


# ----- the pieces ------------------------------------------------------------------------------
def feature_activations(handle: Any, sae: Any, tokens: Tensor, feature: int, hook: str) -> Tensor:
    """Latent ``feature``'s activation per token ``[batch, pos]`` (float32, CPU): one forward
    pass to ``hook`` (:func:`mi_assert.sae.metrics.hook_activations`) and the SAE's encoder."""
    acts = M.hook_activations(handle, tokens, hook)
    feats, _ = M.sae_forward(sae, acts, f"activation at {hook!r}")
    return feats[..., feature].detach().float().cpu()


def token_strings(handle: Any, ids: Sequence[int]) -> tuple[list[Token], bool]:
    """``ids`` as the tokenizer's strings (each id decoded alone), or the ids themselves when
    the model has no tokenizer; and whether they are ids."""
    tok = getattr(handle, "tokenizer", None)
    if tok is None or not hasattr(tok, "decode"):
        return [int(i) for i in ids], True
    cache: dict[int, str] = {}
    out: list[Token] = []
    for i in ids:
        i = int(i)
        if i not in cache:
            try:
                cache[i] = str(tok.decode([i]))
            except Exception:  # an id the tokenizer cannot decode (e.g. padded vocabulary)
                cache[i] = f"<{i}>"
        out.append(cache[i])
    return out, False


def logit_effects(handle: Any, sae: Any, feature: int, hook: str, n: int
                  ) -> tuple[list[tuple[int, float]], list[tuple[int, float]], str, str]:
    """(boosted, suppressed, path, note): the ``n`` largest and smallest entries (token id,
    value) of the latent's direct logit effect (see :data:`LOGIT_PATH`), or empty lists and a
    note saying why it could not be computed."""
    row = sae.W_dec[feature].detach().to("cpu", torch.float32)
    weights = None
    try:
        w_u = getattr(getattr(handle, "model", None), "W_U", None)  # TransformerLens: no copies
        if not isinstance(w_u, Tensor):
            weights = handle.weights()
            w_u = weights.W_U
        w_u = w_u.detach().to("cpu", torch.float32)
    except Exception as exc:  # a backend without weight access: the dashboard goes on without
        return [], [], LOGIT_PATH, f"not computed: the model's W_U is unavailable ({exc})"
    path = LOGIT_PATH
    parsed = handle.parse_hook(hook)
    if parsed.kind == "attn.hook_z":  # per-head z (head-major): through the layer's W_O first
        try:
            w_o = (weights or handle.weights()).W_O[parsed.layer].detach().to("cpu", torch.float32)
        except Exception as exc:
            return [], [], LOGIT_PATH_Z, f"not computed: the model's W_O is unavailable ({exc})"
        if row.shape[0] == w_o.shape[0] * w_o.shape[1]:
            row, path = row @ w_o.flatten(0, 1), LOGIT_PATH_Z
    if row.shape[0] != w_u.shape[0]:
        return [], [], path, (
            f"not computed: the decoder writes {row.shape[0]} dimensions and W_U reads "
            f"{w_u.shape[0]} (hook {hook!r} is not in the residual stream)")
    effect = row @ w_u
    n = max(0, min(int(n), effect.shape[0]))
    top = torch.topk(effect, n)
    bottom = torch.topk(-effect, n)
    boosted = [(int(i), float(v)) for v, i in zip(top.values, top.indices, strict=True)]
    suppressed = [(int(i), float(-v)) for v, i in zip(bottom.values, bottom.indices, strict=True)]
    return boosted, suppressed, path, ""


def _window(value: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        pair = (int(value), int(value))
    elif isinstance(value, Sequence) and len(value) == 2:
        pair = (int(value[0]), int(value[1]))
    else:
        raise MiAssertInputError(f"window must be an int or (before, after); got {value!r}")
    if min(pair) < 0:
        raise MiAssertInputError(f"window sizes must be >= 0; got {value!r}")
    return pair


def _positive_int(name: str, value: Any, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise MiAssertInputError(f"{name} must be an int >= {minimum}; got {value!r}")
    return int(value)


def dashboard_from_activations(
    batches: Sequence[tuple[Tensor, Tensor, Tensor]],
    feature: int,
    hook: str,
    *,
    token_text: Callable[[Sequence[int]], tuple[list[Token], bool]],
    logits: tuple[list[tuple[int, float]], list[tuple[int, float]], str, str] = ([], [], LOGIT_PATH, ""),
    k: int = DEFAULT_K,
    window: int | Sequence[int] = DEFAULT_WINDOW,
    n_quantiles: int = 4,
    quantile_examples: int = 2,
    n_bins: int = 30,
    sources: dict[str, int] | None = None,
) -> FeatureDashboard:
    """The dashboard from activations already measured: ``batches`` of ``(tokens [b, p],
    activations [b, p], counted mask [b, p])`` (batches may differ in length; prompts are
    numbered across them in order). No model is run."""
    k = _positive_int("k", k)
    before, after = _window(window)
    n_quantiles = _positive_int("n_quantiles", n_quantiles, 0)
    quantile_examples = _positive_int("quantile_examples", quantile_examples, 0)
    n_bins = _positive_int("n_bins", n_bins)
    rows: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    for toks, acts, mask in batches:
        t = toks.detach().cpu().numpy()
        a = acts.detach().float().cpu().numpy()
        m = mask.detach().cpu().numpy().astype(bool)
        if t.shape != a.shape or t.shape != m.shape:
            raise MiAssertInputError(f"tokens {t.shape}, activations {a.shape} and mask {m.shape} "
                                     "must have the same [batch, pos] shape")
        rows.extend((t[i], a[i], m[i]) for i in range(t.shape[0]))
    # every counted token: (activation, prompt, position), in prompt order
    vals = np.concatenate([a[m] for _, a, m in rows]) if rows else np.zeros(0)
    where = np.concatenate([np.stack([np.full(int(m.sum()), p), np.flatnonzero(m)], 1)
                            for p, (_, _, m) in enumerate(rows)]) if rows else np.zeros((0, 2), int)
    vals = vals.astype(np.float64)
    firing = vals > 0
    fire_vals = vals[firing]
    n_tokens, n_firing = int(vals.size), int(firing.sum())

    def context(idx: int) -> DashboardContext:
        p, pos = int(where[idx, 0]), int(where[idx, 1])
        t, a, m = rows[p]
        lo, hi = max(0, pos - before), min(t.shape[0], pos + after + 1)
        text, _ = token_text([int(x) for x in t[lo:hi]])
        acts = tuple(float(a[j]) if m[j] else None for j in range(lo, hi))
        return DashboardContext(prompt=p, position=pos, activation=float(vals[idx]),
                                tokens=tuple(text), acts=acts, focus=pos - lo)

    order = np.argsort(-vals, kind="stable")  # ties: the earlier prompt/position first
    top = [int(i) for i in order[:k] if vals[i] > 0]
    groups: list[QuantileGroup] = []
    if n_quantiles and quantile_examples and n_firing:
        qs = np.linspace(0.0, 1.0, n_quantiles + 1)
        cuts = np.quantile(fire_vals, qs)
        free = firing.copy()
        free[top] = False
        for b in reversed(range(n_quantiles)):
            lo_v, hi_v = float(cuts[b]), float(cuts[b + 1])
            upper = vals <= hi_v if b == n_quantiles - 1 else vals < hi_v
            band = np.flatnonzero(free & (vals >= lo_v) & upper)
            in_band = [int(i) for i in band[np.argsort(vals[band], kind="stable")]]  # ascending
            if not in_band:
                continue
            pick = np.unique(np.linspace(0, len(in_band) - 1, quantile_examples).round().astype(int))
            chosen = [in_band[j] for j in pick[::-1]]  # highest first
            free[chosen] = False
            groups.append(QuantileGroup(
                label=f"{100 * qs[b]:.0f}–{100 * qs[b + 1]:.0f}% quantile of firing activations",
                q_low=float(qs[b]), q_high=float(qs[b + 1]), low=lo_v, high=hi_v,
                contexts=tuple(context(i) for i in chosen)))
    if n_firing:
        hi = float(fire_vals.max())
        counts, edges = np.histogram(fire_vals, bins=n_bins, range=(0.0, hi if hi > 0 else 1.0))
    else:
        counts, edges = np.zeros(n_bins, dtype=int), np.linspace(0.0, 1.0, n_bins + 1)
    boosted_ids, suppressed_ids, path, note = logits
    ids = [i for i, _ in boosted_ids] + [i for i, _ in suppressed_ids]
    text, token_ids = token_text(ids)
    boosted = tuple((text[j], v) for j, (_, v) in enumerate(boosted_ids))
    suppressed = tuple((text[len(boosted_ids) + j], v) for j, (_, v) in enumerate(suppressed_ids))
    return FeatureDashboard(
        feature=int(feature), hook=hook, n_prompts=len(rows), n_tokens=n_tokens,
        n_firing=n_firing, density=n_firing / n_tokens if n_tokens else float("nan"),
        max_activation=float(vals.max()) if n_tokens else float("nan"),
        contexts=tuple(context(i) for i in top), quantile_groups=tuple(groups),
        histogram={"edges": [float(e) for e in edges], "counts": [int(c) for c in counts]},
        boosted=boosted, suppressed=suppressed, logit_path=path, logit_note=note,
        token_ids=token_ids, window=(before, after), sources=dict(sources or {}))


def counted_mask(handle: Any, tokens: Tensor, exclude_bos: bool = True) -> Tensor:
    """The positions a dashboard counts: all but BOS (with ``exclude_bos``)."""
    if exclude_bos:
        return M.bos_mask(handle, tokens).cpu()
    return torch.ones_like(tokens, dtype=torch.bool).cpu()


def build_dashboard(handle: Any, sae: Any, feature: int, hook: str,
                    batches: Sequence[tuple[Tensor, Tensor]], *, exclude_bos: bool = True,
                    sources: dict[str, int] | None = None, **options: Any) -> FeatureDashboard:
    """The dashboard from ``(tokens, activations)`` batches measured on ``handle`` (the mask
    and the logit effect are computed here; options as :func:`measure_feature_dashboard`)."""
    n_logits = options.pop("n_logits", 10)
    with_mask = [(t, a, counted_mask(handle, t, exclude_bos)) for t, a in batches]
    return dashboard_from_activations(
        with_mask, feature, hook, token_text=lambda ids: token_strings(handle, ids),
        logits=logit_effects(handle, sae, feature, hook, n_logits), sources=sources, **options)


def measure_feature_dashboard(
    sae: Any,
    model: Any,
    prompts: Any,
    feature: int,
    hook: str | None = None,
    *,
    k: int = DEFAULT_K,
    window: int | Sequence[int] = DEFAULT_WINDOW,
    n_quantiles: int = 4,
    quantile_examples: int = 2,
    n_logits: int = 10,
    n_bins: int = 30,
    exclude_bos: bool = True,
) -> FeatureDashboard:
    """Measure latent ``feature``'s dashboard over ``prompts`` (no verdict).

    ``prompts``: a ``[batch, pos]`` tensor of ids, strings when the model has a tokenizer, or
    nested int lists; one forward pass to the SAE's hook (``hook``, default
    ``sae.cfg.metadata.hook_name``). ``k``: top contexts kept; ``window``: tokens shown
    before and after the activating one (an int for both sides, or ``(before, after)``);
    ``n_quantiles`` bands of the firing activations with ``quantile_examples`` examples each
    (0 for none); ``n_logits``: rows of each logit table; ``n_bins``: histogram bins.
    """
    M.check_is_sae(sae)
    feature = M.check_feature(sae, feature)
    handle = resolve_model(model)
    hook_name = M.check_hook(handle, sae, hook)
    toks = handle.to_tokens(prompts)
    acts = feature_activations(handle, sae, toks, feature, hook_name)
    return build_dashboard(handle, sae, feature, hook_name, [(toks, acts)],
                           exclude_bos=exclude_bos, sources={"prompts": int(toks.shape[0])},
                           k=k, window=window, n_quantiles=n_quantiles,
                           quantile_examples=quantile_examples, n_logits=n_logits, n_bins=n_bins)
