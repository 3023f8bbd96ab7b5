"""Readout claims: direct logit attribution (DLA) and the logit lens.

Direct logit attribution
------------------------
The residual stream entering the final norm is a sum of writers: ``embed + pos_embed +
sum_l (attn_out_l + mlp_out_l)``, and ``attn_out_l = sum_h z_{l,h} @ W_O[l,h] + b_O[l]``. After
the final norm everything is affine, so with the norm's scale *frozen at its cached value*
(TransformerLens's ``ActivationCache.apply_ln_to_stack``) the logit difference splits exactly:

    logit_diff = sum_c  (centre(c) / scale) . g  +  constant

where ``g = d logit_diff / d ln_final.hook_normalized`` (``W_U[:, correct] - W_U[:, wrong]``
times the norm's weight), ``centre`` subtracts the mean over ``d_model`` for LayerNorm (not
RMSNorm) and ``constant`` holds the norm's bias and the unembedding bias. ``g``, the norm's kind
and its scale are read from the handle (one forward with a gradient at the normalised stream;
the scale from the norm's input and output), so this works on any backend, not only
TransformerLens. For a TransformerLens model with folded LN it equals
``cache.logit_attrs(cache.stack_head_results(...))`` (tested to 1e-4).

Logit lens
----------
Layer ``l``'s logit-lens logits are the model's own final norm and unembedding applied to
``blocks.l.hook_resid_post`` (the norm's statistics recomputed from that residual, as in
``apply_ln_to_stack(recompute_ln=True)``): computed by replacing the last block's output with
layer ``l``'s residual stream and reading the logits.

Measure, judge, assert
----------------------
:func:`direct_logit_attribution` and :func:`logit_lens_ranks` measure; :func:`check_direct_logit_attribution`
and :func:`check_logit_lens` judge through :mod:`mi_assert.stats` (prompts are units by token
row) and return Evidence without raising; the ``assert_*`` functions raise on a failed claim.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from mi_assert.backends import ModelHandle
from mi_assert.causal._readout_inputs import (
    Writer,
    check_position,
    check_threshold_option,
    model_seed_of,
    parse_answer_ids,
    parse_writers,
    prompt_tokens,
    prompt_units,
    readout_options,
)
from mi_assert.errors import MiAssertInputError, check_finite
from mi_assert.loading import resolve_model
from mi_assert.stats import (
    DEFAULT_MIN_UNITS,
    ClaimOptions,
    ClaimSpec,
    Evidence,
    Mean,
    RatioOfMeans,
    all_of,
    undefined_claim,
)
from mi_assert.stats.bootstrap import Alternative
from mi_assert.verdict import asserting

#: relative tolerance when reading the final norm's kind and scale from its input and output
_NORM_RTOL = 1e-3


@dataclass
class DirectLogitAttribution:
    """Per-prompt direct contributions to the logit difference (or logit) at one position.

    All arrays are float64 numpy with a leading ``batch`` axis. ``attn[:, l]`` is layer ``l``'s
    whole attention output (its heads plus ``b_O``); ``constant`` is the part no writer owns
    (final-norm bias, unembedding bias); ``total`` is the model's own logit difference, and
    ``residual_gap`` the largest ``|sum of writers + constant - total|`` (checks the
    decomposition: writers missing from the canonical hooks would show up here). ``units``
    names each prompt by its token row, so copies of one prompt count as one unit.
    """

    heads: np.ndarray  # [batch, n_layers, n_heads]
    attn: np.ndarray  # [batch, n_layers]
    mlp: np.ndarray | None  # [batch, n_layers] or None for attention-only models
    embed: np.ndarray  # [batch]
    pos_embed: np.ndarray  # [batch]
    constant: np.ndarray  # [batch]
    total: np.ndarray  # [batch]
    position: int
    normalization: str  # "none", "layernorm" or "rmsnorm"
    residual_gap: float
    target: str = "logit difference"
    #: one id per prompt (its token row): the units a claim resamples
    units: list[tuple[int, ...]] = field(default_factory=list)
    extras: dict[str, Any] = field(default_factory=dict)

    def of(self, writer: Writer) -> np.ndarray:
        """Per-prompt direct contribution of one writer ``[batch]``."""
        if writer.kind == "head":
            return self.heads[:, writer.layer, writer.head]
        if writer.kind == "attn":
            return self.attn[:, writer.layer]
        if writer.kind == "mlp":
            if self.mlp is None:
                raise MiAssertInputError("the model has no MLP layers")
            return self.mlp[:, writer.layer]
        return self.embed if writer.kind == "embed" else self.pos_embed

    def ranked(self) -> list[tuple[str, float]]:
        """Every head, MLP layer, embedding and the constant by mean contribution, largest |.| first."""
        rows: list[tuple[str, float]] = []
        n_layers, n_heads = self.heads.shape[1:]
        means = self.heads.mean(axis=0)
        rows += [(f"L{lay}H{h}", float(means[lay, h])) for lay in range(n_layers) for h in range(n_heads)]
        rows += [(f"attn{lay} b_O", float((self.attn[:, lay] - self.heads[:, lay].sum(-1)).mean()))
                 for lay in range(n_layers)]
        if self.mlp is not None:
            rows += [(f"mlp{lay}", float(self.mlp[:, lay].mean())) for lay in range(n_layers)]
        rows += [("embed", float(self.embed.mean())), ("pos_embed", float(self.pos_embed.mean())),
                 ("constant (biases)", float(self.constant.mean()))]
        return sorted(rows, key=lambda r: -abs(r[1]))


def direct_logit_attribution(
    model: Any,
    prompts: Any,
    correct_ids: Any = None,
    wrong_ids: Any = None,
    position: int = -1,
) -> DirectLogitAttribution:
    """Direct contribution of every head, layer and embedding to ``logit[correct] - logit[wrong]``.

    ``prompts``: token ids ``[batch, pos]``, strings, or a PromptSet (whose ``correct`` /
    ``wrong`` are used when the ids are not given). ``wrong_ids=None`` attributes the correct
    token's logit itself. One forward and one backward pass.
    """
    handle = resolve_model(model)
    tokens, pset = prompt_tokens(handle, prompts)
    batch, n_pos = tokens.shape
    pos = check_position(position, n_pos)
    if pset is not None:
        correct_ids = pset.correct if correct_ids is None else correct_ids
        wrong_ids = pset.wrong if wrong_ids is None else wrong_ids
    correct = parse_answer_ids(handle, correct_ids, batch, "correct_ids")
    wrong = parse_answer_ids(handle, wrong_ids, batch, "wrong_ids") if wrong_ids is not None else None
    if wrong is not None and bool((correct == wrong).any()):
        same = torch.nonzero(correct == wrong).flatten().tolist()[:10]
        raise MiAssertInputError(
            f"correct_ids equal wrong_ids for prompt(s) {same}: the logit difference is then 0 "
            "by construction; give each prompt a different wrong answer"
        )
    dla = _dla(handle, tokens, correct, wrong, pos)
    dla.units = prompt_units(tokens)
    return dla


def _dla(handle: ModelHandle, tokens: Tensor, correct: Tensor, wrong: Tensor | None,
         pos: int) -> DirectLogitAttribution:
    n_layers = handle.n_layers
    final = f"blocks.{n_layers - 1}.hook_resid_post"
    z_hooks = [f"blocks.{lay}.attn.hook_z" for lay in range(n_layers)]
    attn_hooks = [f"blocks.{lay}.hook_attn_out" for lay in range(n_layers)]
    mlp_hooks = [f"blocks.{lay}.hook_mlp_out" for lay in range(n_layers)] if handle.has_mlp else []
    hooks = ["hook_embed", "blocks.0.hook_resid_pre", final, *z_hooks, *attn_hooks, *mlp_hooks]
    box: dict[str, Tensor] = {}

    def as_leaf(act: Tensor) -> Tensor:
        # cut the graph here: d(logits)/d(normalised stream) is the affine readout's matrix,
        # available even when the model's parameters do not require grad
        leaf = act.detach().clone().requires_grad_(True)
        box["normalized"] = leaf
        return leaf

    rows = torch.arange(tokens.shape[0], device=tokens.device)
    # the graph starts at the leaf: with the parameters not requiring grad for this pass, the
    # blocks before it record nothing (a recorded forward held every block's saved tensors:
    # 2.3 GiB for 32 x 32 tokens on GPT-2 small, against 0.4 GiB for the plain forward)
    params = [p for p in handle.torch_module.parameters() if p.requires_grad]
    try:
        for p in params:
            p.requires_grad_(False)
        with torch.enable_grad():
            logits, cache = handle.run_with_edits(
                tokens, {"ln_final.hook_normalized": as_leaf}, hooks, keep_graph=True)
            at = logits[:, pos]
            value = at[rows, correct] - (at[rows, wrong] if wrong is not None else 0.0)
            (grad,) = torch.autograd.grad(value.sum(), box["normalized"])
    finally:
        for p in params:
            p.requires_grad_(True)
    check_finite("logits", logits.detach())
    f64 = torch.float64
    normalized = box["normalized"].detach()[:, pos].to("cpu", f64)
    g = grad[:, pos].to("cpu", f64)
    resid = cache[final].detach()[:, pos].to("cpu", f64)
    kind, scale = _final_norm(resid, normalized)
    centre = kind == "layernorm"

    def direct(out: Tensor) -> Tensor:
        """Writer outputs ``[batch, ..., d_model]`` → direct effect ``[batch, ...]``."""
        v = out.detach().to("cpu", f64)
        if centre:
            v = v - v.mean(-1, keepdim=True)
        shape = (v.shape[0],) + (1,) * (v.ndim - 2)
        return (v / scale.view(*shape, 1) * g.view(shape[0], *shape[1:], -1)).sum(-1)

    W_O = handle.weights().W_O.to("cpu", f64)  # [layer, head, d_head, d_model]
    heads = torch.stack([
        direct(torch.einsum("bhe,hed->bhd", cache[z].detach()[:, pos].to("cpu", f64), W_O[lay]))
        for lay, z in enumerate(z_hooks)], dim=1)
    attn = torch.stack([direct(cache[h][:, pos]) for h in attn_hooks], dim=1)
    mlp = torch.stack([direct(cache[h][:, pos]) for h in mlp_hooks], dim=1) if mlp_hooks else None
    embed_vec = cache["hook_embed"][:, pos].to("cpu", f64)
    embed = direct(embed_vec)
    pos_embed = direct(cache["blocks.0.hook_resid_pre"][:, pos].to("cpu", f64) - embed_vec)
    total = value.detach().to("cpu", f64)
    constant = total - (normalized * g).sum(-1)
    summed = embed + pos_embed + attn.sum(-1) + (mlp.sum(-1) if mlp is not None else 0.0) + constant
    gap = float((summed - total).abs().max())
    return DirectLogitAttribution(
        heads=heads.numpy(), attn=attn.numpy(), mlp=None if mlp is None else mlp.numpy(),
        embed=embed.numpy(), pos_embed=pos_embed.numpy(), constant=constant.numpy(),
        total=total.numpy(), position=pos, normalization=kind, residual_gap=gap,
        target="logit difference" if wrong is not None else "logit",
    )


def _final_norm(resid: Tensor, normalized: Tensor) -> tuple[str, Tensor]:
    """The final norm's kind and per-prompt scale, read from its input and output.

    LayerNorm: ``normalized = (x - mean x) / scale``; RMSNorm: ``x / scale``; none: identity.
    ``scale`` is recovered by least squares (exact when the relation holds) and checked.
    """
    batch = resid.shape[0]
    ref = float(normalized.abs().max()) or 1.0
    if float((resid - normalized).abs().max()) <= 1e-6 * max(ref, float(resid.abs().max())):
        return "none", torch.ones(batch, dtype=resid.dtype)
    mean_n = normalized.mean(-1).abs()
    rms_n = normalized.pow(2).mean(-1).sqrt()
    centred = bool((mean_n <= _NORM_RTOL * rms_n + 1e-12).all())
    x = resid - resid.mean(-1, keepdim=True) if centred else resid
    scale = (x * x).sum(-1) / (x * normalized).sum(-1)
    err = float((x / scale[:, None] - normalized).abs().max())
    if not torch.isfinite(scale).all() or bool((scale <= 0).any()) or err > _NORM_RTOL * ref:
        raise MiAssertInputError(
            "cannot decompose the logits linearly: the final normalisation "
            "(ln_final.hook_normalized) is neither LayerNorm, RMSNorm nor the identity of the last "
            f"block's output (reconstruction error {err:.3g}). Direct logit attribution needs a "
            "model whose unembedding reads the final residual stream through such a norm"
        )
    return ("layernorm" if centred else "rmsnorm"), scale


def _dla_claim(
    handle: ModelHandle,
    prompts: Any,
    components: Any,
    correct_ids: Any,
    wrong_ids: Any,
    min_share: float | None,
    min_value: float | None,
    position: int,
    max_abs_share: float | None,
    opts: ClaimOptions,
) -> Evidence:
    writers = parse_writers(handle, components)
    if min_share is None and min_value is None and max_abs_share is None:
        raise MiAssertInputError(
            "give at least one threshold: min_share (fraction of the logit difference), "
            "min_value (logit units) or max_abs_share (the component contributes about nothing)"
        )
    for opt, val in (("min_share", min_share), ("min_value", min_value)):
        if val is not None:
            check_threshold_option(opt, val, "greater", None, "direct logit attribution")
    if max_abs_share is not None and (isinstance(max_abs_share, bool)
                                      or not isinstance(max_abs_share, (int, float))
                                      or not 0 < max_abs_share < 1):
        raise MiAssertInputError(f"max_abs_share must lie in (0, 1); got {max_abs_share!r}")
    dla = direct_logit_attribution(handle, prompts, correct_ids, wrong_ids, position)
    contrib = np.sum([dla.of(w) for w in writers], axis=0)
    total = dla.total
    name = " + ".join(w.label for w in writers)
    target = dla.target
    mean_total = float(total.mean())
    model_seed = model_seed_of(handle)
    common: dict[str, Any] = {"seeds": opts.seeds, "quorum": opts.quorum,
                              "n_resamples": opts.n_resamples, "min_units": opts.min_prompts,
                              "hist_figure": False}
    share_metric = f"share of the {target} (ratio of means)"

    members: list[ClaimSpec | Evidence] = []
    share_tests: list[tuple[str, float, Alternative]] = []
    if min_share is not None:
        share_tests.append((f"share > {min_share:g}", float(min_share), "greater"))
    if max_abs_share is not None:
        share_tests += [(f"share < {max_abs_share:g}", float(max_abs_share), "less"),
                        (f"share > {-max_abs_share:g}", -float(max_abs_share), "greater")]
    n_units = len(set(dla.units))
    for label, threshold, alternative in share_tests:
        if mean_total <= 0:
            members.append(undefined_claim(
                label, share_metric,
                f"the model's mean {target} over the prompts is {mean_total:.4g} <= 0, so a "
                f"share of it is meaningless (the model does not prefer the correct answer)",
                threshold=threshold, alternative=alternative, alpha=opts.alpha, n=n_units))
            continue
        shares = {(seed, model_seed): RatioOfMeans(contrib, total, units=dla.units)
                  for seed in opts.seeds}
        members.append(ClaimSpec(label, share_metric, shares, threshold, alternative, **common))
    if min_value is not None:
        values = {(seed, model_seed): Mean(contrib, units=dla.units) for seed in opts.seeds}
        members.append(ClaimSpec(f"contribution > {min_value:g}",
                                 f"direct {target} attribution (logits)", values,
                                 float(min_value), "greater", **common))

    ranked = dla.ranked()
    top = "\n".join(f"{lab:>18}: {val:+.4f} ({val / mean_total:+.1%} of the mean {target})"
                    if mean_total else f"{lab:>18}: {val:+.4f}" for lab, val in ranked[:8])
    details = {
        f"mean {target}": mean_total,
        "mean contribution": float(contrib.mean()),
        "share (ratio of means)": (float(contrib.mean() / mean_total) if mean_total > 0
                                   else f"undefined (mean {target} {mean_total:.4g} <= 0)"),
        "final norm": dla.normalization,
        "decomposition gap": dla.residual_gap,
        "top direct contributors": top,
    }
    settings = {"components": name, "position": dla.position, "n_prompts": int(total.size),
                "seeds": list(opts.seeds), "target": target}
    if min_share is None and min_value is None:
        claim = f"{name} writes about none of the {target} (|share| < {max_abs_share:g})"
    else:
        claim = f"{name} directly writes the {target}"
    ev = all_of(members, claim=claim, alpha=opts.alpha, settings=settings,
                model_info=handle.describe(), details=details,
                figures=_dla_figures(dla, contrib, name))
    hint = (f"Top direct contributors to the {target} at position {dla.position} "
            f"(mean over {total.size} prompts):\n{top}")
    return ev.with_context(hint=hint)


def check_direct_logit_attribution(
    model: Any,
    prompts: Any,
    components: Any,
    correct_ids: Any = None,
    wrong_ids: Any = None,
    min_share: float | None = None,
    min_value: float | None = None,
    position: int = -1,
    *,
    max_abs_share: float | None = None,
    alpha: float = 0.05,
    seeds: int | Sequence[int] | None = None,
    seed: int | None = None,
    quorum: int | float | None = None,
    n_resamples: int = 2000,
    min_prompts: int = DEFAULT_MIN_UNITS,
) -> Evidence:
    """Evidence for: ``components`` write (directly, through the final norm) into the logit
    difference. Never raises on a failed claim (see :func:`assert_direct_logit_attribution`).

    ``components``: one writer or a list of them (a list is one claim about their *sum*):
    heads (``(l, h)``, ``"L1H3"``, ``"1.3"``), ``"attnL"``, ``"mlpL"``, ``"embed"``,
    ``"pos_embed"``. Thresholds (at least one; all given must hold, an intersection-union test
    whose headline is the deciding member):

    * ``min_share``: the share ``mean(contribution) / mean(logit difference)`` (a ratio of
      means over prompts, paired bootstrap) has its lower bound above ``min_share``. When the
      model's mean logit difference is not positive the share is undefined and the member fails
      with that reason;
    * ``min_value``: the mean per-prompt contribution (logit units) has its lower bound above;
    * ``max_abs_share``: the share lies within ``(-max_abs_share, max_abs_share)`` (two one-sided
      tests, TOST: the claim "this component contributes about nothing").

    ``seeds`` (alias ``seed``) seed the bootstrap over the fixed prompts, one row per seed
    (``quorum`` of them must pass); prompts are units by token row, and a claim needs
    ``min_prompts`` distinct ones. Same inputs and seeds → same Evidence.
    """
    handle = resolve_model(model)
    opts = readout_options(seeds=seeds, seed=seed, quorum=quorum, alpha=alpha,
                           n_resamples=n_resamples, min_prompts=min_prompts)
    return _dla_claim(handle, prompts, components, correct_ids, wrong_ids, min_share, min_value,
                       position, max_abs_share, opts)


assert_direct_logit_attribution = asserting(check_direct_logit_attribution)


def _dla_figures(dla: DirectLogitAttribution, contrib: np.ndarray, name: str) -> dict[str, Any]:
    n_layers = dla.heads.shape[1]
    layer_labels = ["embed", "pos_embed"]
    layer_values = [dla.embed.mean(), dla.pos_embed.mean()]
    for lay in range(n_layers):
        layer_labels.append(f"attn{lay}")
        layer_values.append(dla.attn[:, lay].mean())
        if dla.mlp is not None:
            layer_labels.append(f"mlp{lay}")
            layer_values.append(dla.mlp[:, lay].mean())
    return {
        "dla_heads": {"kind": "heatmap", "data": dla.heads.mean(axis=0), "xlabel": "head",
                      "ylabel": "layer", "title": f"direct {dla.target} attribution per head"},
        "dla_layers": {"kind": "line", "data": np.asarray(layer_values), "labels": layer_labels,
                       "xlabel": "component", "ylabel": f"direct {dla.target} attribution",
                       "title": "direct attribution per layer (attn includes b_O)"},
        "samples": {"kind": "hist", "data": [contrib], "labels": [name],
                    "xlabel": f"direct {dla.target} attribution of {name}", "ylabel": "prompts",
                    "title": f"per-prompt direct attribution of {name}"},
    }


# ----------------------------------------------------------------------------------------
# logit lens
# ----------------------------------------------------------------------------------------
def logit_lens_ranks(model: Any, prompts: Any, answer_ids: Any = None,
                     position: int = -1) -> np.ndarray:
    """Rank of the answer in each layer's logit lens ``[batch, n_layers]`` (0 = top-1).

    The rank counts the *other* tokens whose lens logit is at least the answer's (ties count
    against the answer). Layer ``l`` is ``blocks.l.hook_resid_post`` through the model's final
    norm and unembedding; the last layer's lens is the model's own output.
    """
    handle = resolve_model(model)
    tokens, pset = prompt_tokens(handle, prompts)
    if answer_ids is None and pset is not None:
        answer_ids = pset.correct
    answers = parse_answer_ids(handle, answer_ids, tokens.shape[0], "answer_ids")
    pos = check_position(position, tokens.shape[1])
    return _lens_ranks(handle, tokens, answers, pos)


def _lens_ranks(handle: ModelHandle, tokens: Tensor, answers: Tensor, pos: int) -> np.ndarray:
    from mi_assert.lens.readout import Readout

    n_layers = handle.n_layers
    resid_hooks = [f"blocks.{lay}.hook_resid_post" for lay in range(n_layers)]
    logits, cache = handle.run_with_cache(tokens, resid_hooks)
    # each layer's lens at the one position read: the model's own final norm + unembedding
    # (checked once against its logits); where the head is more than that, the readout runs a
    # forward pass with the last block's resid_post replaced, as the lens's definition reads
    readout = Readout(handle)
    one = slice(pos, pos + 1)
    readout.verify(cache[resid_hooks[-1]][:, one], logits[:, one])
    modules = readout.source.startswith("model modules")
    rows = torch.arange(tokens.shape[0], device=tokens.device)
    ranks = []
    for lay in range(n_layers):
        if lay < n_layers - 1:
            resid = cache[resid_hooks[lay]]
            with torch.no_grad():
                at = (readout(resid[:, one], None)[:, 0] if modules
                      else readout(resid, tokens)[:, pos])
        else:
            at = logits[:, pos]
        at = at.float()
        check_finite(f"logit-lens logits of layer {lay}", at)
        ans = at[rows, answers.to(at.device)]
        ranks.append(((at >= ans[:, None]).sum(-1) - 1).cpu())
    return torch.stack(ranks, dim=1).numpy()


def _lens_claim(handle: ModelHandle, prompts: Any, answer_ids: Any, from_layer: int, top_k: int,
                position: int, min_fraction: float, opts: ClaimOptions) -> Evidence:
    metric = f"fraction of layers >= {from_layer} with the answer in the top-{top_k}"
    min_fraction = check_threshold_option("min_fraction", min_fraction, "greater", (0.0, 1.0),
                                          metric)
    if isinstance(from_layer, bool) or not isinstance(from_layer, int):
        raise MiAssertInputError(f"from_layer must be an int layer index; got {from_layer!r}")
    handle.check_layer(from_layer)
    if isinstance(top_k, bool) or not isinstance(top_k, int) or not 1 <= top_k <= handle.d_vocab:
        raise MiAssertInputError(f"top_k must be an int in 1..{handle.d_vocab} (d_vocab); got {top_k!r}")
    tokens, pset = prompt_tokens(handle, prompts)
    if answer_ids is None and pset is not None:
        answer_ids = pset.correct
    answers = parse_answer_ids(handle, answer_ids, tokens.shape[0], "answer_ids")
    pos = check_position(position, tokens.shape[1])
    ranks = _lens_ranks(handle, tokens, answers, pos)
    units = prompt_units(tokens)
    hits = ranks < top_k  # [batch, n_layers]
    scores = hits[:, from_layer:].mean(axis=1)
    rate = hits.mean(axis=0)
    n_layers = handle.n_layers
    model_seed = model_seed_of(handle)
    per_layer = ", ".join(f"L{lay}: {rate[lay]:.0%}" for lay in range(n_layers))
    first_ok = next((lay for lay in range(n_layers) if rate[lay:].min() > min_fraction), None)
    spec = ClaimSpec(
        f"answer in the logit lens's top-{top_k} from layer {from_layer}", metric,
        {(seed, model_seed): Mean(scores, units=units) for seed in opts.seeds},
        threshold=min_fraction, alternative="greater", seeds=opts.seeds, quorum=opts.quorum,
        n_resamples=opts.n_resamples, min_units=opts.min_prompts, value_range=(0.0, 1.0),
        settings={"from_layer": from_layer, "top_k": top_k, "position": position,
                  "n_prompts": int(scores.size), "seeds": list(opts.seeds)},
        model_info=handle.describe(),
        details={"top-k rate per layer": per_layer,
                 "median rank per layer": ", ".join(f"L{lay}: {np.median(ranks[:, lay]):g}"
                                                    for lay in range(n_layers))},
        figures={
            "logit_lens_rank": {"kind": "line", "data": ranks.mean(axis=0), "xlabel": "layer",
                                "ylabel": "mean rank of the answer (0 = top-1)",
                                "title": "logit lens: answer rank per layer"},
            "logit_lens_topk": {"kind": "line", "data": rate, "xlabel": "layer",
                                "ylabel": f"fraction of prompts with the answer in the top-{top_k}",
                                "title": "logit lens: top-k rate per layer"},
        },
    )
    hint = (f"Answer in the lens's top-{top_k} per layer: {per_layer}. "
            + (f"Every layer from {first_ok} on has a top-{top_k} rate above {min_fraction:g}."
               if first_ok is not None else
               f"No layer range reaches a top-{top_k} rate above {min_fraction:g}."))
    return spec.evaluate(opts.alpha).with_context(hint=hint)


def check_logit_lens(
    model: Any,
    prompts: Any,
    answer_ids: Any = None,
    from_layer: int = 0,
    top_k: int = 1,
    position: int = -1,
    min_fraction: float = 0.9,
    *,
    alpha: float = 0.05,
    seeds: int | Sequence[int] | None = None,
    seed: int | None = None,
    quorum: int | float | None = None,
    n_resamples: int = 2000,
    min_prompts: int = DEFAULT_MIN_UNITS,
) -> Evidence:
    """Evidence for: from layer ``from_layer`` on, the logit lens already ranks the answer in
    its top-k. Never raises on a failed claim (see :func:`assert_logit_lens`).

    Per prompt, the score is the fraction of layers ``from_layer .. n_layers-1`` whose lens
    (``blocks.l.hook_resid_post`` through the final norm and unembedding) puts ``answer_ids`` in
    its top ``top_k`` (ties count against the answer). The claim holds when the one-sided lower
    bound (bootstrap over prompts, units by token row, at least ``min_prompts`` distinct) of the
    mean score exceeds ``min_fraction`` (in ``[0, 1)``): with the default 0.9, essentially every
    prompt must have the answer in the top-k at essentially every layer from ``from_layer``.
    ``seeds`` (alias ``seed``) seed the bootstrap, one row per seed. Figures: the answer's mean
    rank and top-k rate per layer.
    """
    handle = resolve_model(model)
    opts = readout_options(seeds=seeds, seed=seed, quorum=quorum, alpha=alpha,
                           n_resamples=n_resamples, min_prompts=min_prompts)
    return _lens_claim(handle, prompts, answer_ids, from_layer, top_k, position, min_fraction,
                        opts)


assert_logit_lens = asserting(check_logit_lens)


