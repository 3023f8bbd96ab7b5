"""The reference implementations the fast kernels are compared with (in benchmarks and tests).

* TransformerLens's own loops (``get_act_patch_attn_head_out_all_pos``,
  ``get_act_patch_resid_pre``), with the metric averaged over prompts as TL expects.
* nnsight over the HuggingFace twin, written the way an nnsight user would: one ``invoke`` per
  patched variant inside a trace, clean ``z`` (the input of ``attn.c_proj``, or of Llama's
  ``self_attn.o_proj``) saved from a clean trace first.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor


def tl_head_out_sweep(model: Any, clean: Tensor, corrupted: Tensor, metric: Any) -> Tensor:
    """``get_act_patch_attn_head_out_all_pos`` with a mean-over-prompts metric."""
    from transformer_lens import patching

    _, clean_cache = model.run_with_cache(clean)
    return patching.get_act_patch_attn_head_out_all_pos(
        model, corrupted, clean_cache, lambda logits: metric(logits).mean())


def tl_resid_pre_sweep(model: Any, clean: Tensor, corrupted: Tensor, metric: Any) -> Tensor:
    """``get_act_patch_resid_pre`` with a mean-over-prompts metric."""
    from transformer_lens import patching

    _, clean_cache = model.run_with_cache(clean)
    return patching.get_act_patch_resid_pre(
        model, corrupted, clean_cache, lambda logits: metric(logits).mean())


def nnsight_model(hf_model: Any) -> Any:
    """Wrap a HF causal LM in nnsight so that several invokes of token tensors batch together.

    nnsight's base ``NNsight`` refuses to batch invokes and its ``LanguageModel`` needs a
    tokenizer (we have random weights and no hub), so we supply the two batching hooks nnsight
    documents for this purpose: rows per invoke, and concatenation along the batch.
    """
    from nnsight import NNsight

    class TokenBatchedNNsight(NNsight):  # type: ignore[misc]
        def _batch_size(self, *inputs: Any, **kwargs: Any) -> int:
            return int(inputs[0].shape[0]) if inputs else 0

        def _batch(self, invokes: list[tuple[Any, Any]], fn: Any) -> tuple[Any, Any]:
            if len(invokes) == 1:
                return invokes[0]
            return (torch.cat([args[0] for args, _ in invokes]),), {}

    return TokenBatchedNNsight(hf_model)


def _blocks_and_output_projection(nn_model: Any) -> tuple[Any, Callable[[Any], Any], int]:
    """The decoder blocks, each block's attention output projection (whose input is the heads'
    ``z``, concatenated) and ``d_head``: GPT-2 (``transformer.h``, ``attn.c_proj``) or the
    Llama family (``model.layers``, ``self_attn.o_proj``)."""
    config = nn_model._module.config
    if hasattr(nn_model._module, "transformer"):
        return nn_model.transformer.h, lambda block: block.attn.c_proj, config.n_embd // config.n_head
    d_head = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    return nn_model.model.layers, lambda block: block.self_attn.o_proj, d_head


def nnsight_head_out_sweep(nn_model: Any, clean: Tensor, corrupted: Tensor, metric: Any,
                           n_heads: int, layers_per_trace: int | None = None,
                           layers: Sequence[int] | None = None) -> Tensor:
    """All-heads output patching with one invoke per (layer, head) variant, on a GPT-2 or
    Llama-family model: ``[len(layers), n_heads]`` (every layer by default).

    ``layers_per_trace=None`` puts every variant in one trace; ``1`` runs one trace per layer
    (needed at large batch: every invoke materialises full-vocabulary logits).
    """
    blocks, projection, d_head = _blocks_and_output_projection(nn_model)
    layers = list(range(len(blocks))) if layers is None else list(layers)
    per_trace = layers_per_trace or len(layers)
    with torch.no_grad():
        with nn_model.trace(clean):
            z_clean = list().save()
            for layer in layers:
                z_clean.append(projection(blocks[layer]).input)
        results: list[Tensor] = []
        for first in range(0, len(layers), per_trace):
            with nn_model.trace() as tracer:
                values = list().save()
                for i in range(first, min(first + per_trace, len(layers))):
                    for head in range(n_heads):
                        cols = slice(head * d_head, (head + 1) * d_head)
                        with tracer.invoke(corrupted):
                            z = projection(blocks[layers[i]]).input
                            z[:, :, cols] = z_clean[i][:, :, cols]
                            values.append(metric(nn_model.lm_head.output).mean())
            results.extend(torch.as_tensor(v) for v in values)
    return torch.stack(results).view(len(layers), n_heads)


def tl_attribution_head_out(model: Any, clean: Tensor, corrupted: Tensor, metric: Any) -> Tensor:
    """Attribution patching the straightforward way: TL hooks, ``retain_grad`` on every
    ``hook_z``, ``backward`` of the mean metric; score = sum (z_clean - z_corr) * grad."""
    _, clean_cache = model.run_with_cache(clean)
    names = [f"blocks.{layer}.attn.hook_z" for layer in range(model.cfg.n_layers)]
    saved: dict[str, Tensor] = {}

    def keep(act: Tensor, hook: Any) -> Tensor:
        act.retain_grad()
        saved[hook.name] = act
        return act

    with torch.enable_grad():
        model.zero_grad(set_to_none=True)
        logits = model.run_with_hooks(corrupted, fwd_hooks=[(n, keep) for n in names])
        metric(logits).mean().backward()
    scores = [((clean_cache[n] - saved[n].detach()) * saved[n].grad).sum(dim=(0, 1, 3)) for n in names]
    model.zero_grad(set_to_none=True)
    return torch.stack(scores)
