"""Deliberately naive references for edge scores, written against plain TransformerLens.

One ``run_with_hooks`` forward per edge (exact), one ``torch.autograd.grad`` call and a Python
loop over edges (EAP). Sender outputs come from TL's own hooks (``hook_embed + hook_pos_embed``,
per-head ``attn.hook_result``, ``hook_mlp_out``), not from mi-assert's recording.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch


@contextmanager
def tl_flags(model, **flags):
    before = {k: getattr(model.cfg, k) for k in flags}
    for k, v in flags.items():
        setattr(model.cfg, k, v)
    try:
        yield
    finally:
        for k, v in before.items():
            setattr(model.cfg, k, v)


def _split_flags(model) -> dict:
    flags = {"use_split_qkv_input": True}
    if not model.cfg.attn_only:
        flags["use_hook_mlp_in"] = True
    return flags


def sender_outputs(model, tokens) -> dict[str, torch.Tensor]:
    """Sender name -> output [batch, pos, d_model]."""
    with tl_flags(model, use_attn_result=True), torch.no_grad():
        _, cache = model.run_with_cache(tokens)
    pos = cache.cache_dict.get("hook_pos_embed")  # rotary models add no position embedding
    out = {"embed": cache["hook_embed"] + (0 if pos is None else pos)}
    for layer in range(model.cfg.n_layers):
        for h in range(model.cfg.n_heads):
            out[f"L{layer}H{h}"] = cache[f"blocks.{layer}.attn.hook_result"][:, :, h]
        if not model.cfg.attn_only:
            out[f"mlp{layer}"] = cache[f"blocks.{layer}.hook_mlp_out"]
    return out


def receiver(model, name: str) -> tuple[str, int | None]:
    """Receiver text ('L1H0.k', 'mlp0', 'logits') -> (TL hook name, head)."""
    if name == "logits":
        return f"blocks.{model.cfg.n_layers - 1}.hook_resid_post", None
    if name.startswith("mlp"):
        return f"blocks.{int(name[3:])}.hook_mlp_in", None
    node, inp = name.split(".")
    layer, head = node[1:].split("H")
    return f"blocks.{int(layer)}.hook_{inp}_input", int(head)


def naive_exact(model, clean, corrupted, metric, edge_names) -> torch.Tensor:
    """[n_edges, batch]: metric(corrupted run with the edge's receiver input + the sender's
    clean-minus-corrupted output) - metric(corrupted run), one forward per edge."""
    deltas = {k: sender_outputs(model, clean)[k] - v
              for k, v in sender_outputs(model, corrupted).items()}
    rows = []
    with tl_flags(model, **_split_flags(model)), torch.no_grad():
        base = metric(model(corrupted))
        for name in edge_names:
            sender, receiver_name = name.split("->")
            hook_name, head = receiver(model, receiver_name)
            delta = deltas[sender]

            def add(act, hook, delta=delta, head=head):
                act = act.clone()
                if head is None:
                    act += delta
                else:
                    act[:, :, head] += delta
                return act

            logits = model.run_with_hooks(corrupted, fwd_hooks=[(hook_name, add)])
            rows.append(metric(logits) - base)
    return torch.stack(rows)


def autograd_eap(model, clean, corrupted, metric, edge_names) -> torch.Tensor:
    """[n_edges, batch]: (clean - corrupted sender output) · d metric / d receiver input."""
    deltas = {k: sender_outputs(model, clean)[k] - v
              for k, v in sender_outputs(model, corrupted).items()}
    hook_names = sorted({receiver(model, n.split("->")[1])[0] for n in edge_names})
    acts = {}

    def keep(act, hook):
        acts[hook.name] = act

    with tl_flags(model, **_split_flags(model)):
        logits = model.run_with_hooks(corrupted, fwd_hooks=[(n, keep) for n in hook_names])
        grads = dict(zip(hook_names, torch.autograd.grad(
            metric(logits).sum(), [acts[n] for n in hook_names]), strict=True))
    rows = []
    for name in edge_names:
        sender, receiver_name = name.split("->")
        hook_name, head = receiver(model, receiver_name)
        grad = grads[hook_name] if head is None else grads[hook_name][:, :, head]
        rows.append((deltas[sender] * grad).sum(dim=(1, 2)))
    return torch.stack(rows).detach()
