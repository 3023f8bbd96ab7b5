"""Train a tuned lens: each translator minimises ``KL(final || lens)`` over tokens.

The model runs once over the training tokens (in chunks): the residual stream at every hook a
translator reads and the last block's output, from which each batch's target distribution is
decoded, are kept (when they fit in :data:`CACHE_BYTES`; else the model runs again per batch).
Each step draws ``batch_size`` sequences (a seeded permutation per epoch), decodes every
layer through its translator and the model's own final norm and unembedding, and takes one
Adam step on the sum over layers of the mean KL over all non-BOS positions (the translators are
independent, so the sum trains each on its own loss). Gradients are taken for the translators
only: the model's parameters and their ``.grad`` are never touched.

Deterministic for a seed on one device (zero initialisation, seeded batch order, no dropout:
the model runs in eval mode).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from mi_assert.errors import MiAssertInputError
from mi_assert.lens.divergence import kl_to_target
from mi_assert.lens.readout import Readout
from mi_assert.lens.translators import TunedLens
from mi_assert.loading import resolve_model
from mi_assert.stats.options import check_count

#: largest cache of activations + final log-probs kept for training (bytes)
CACHE_BYTES = 1 << 30
DEFAULT_STEPS = 300
DEFAULT_LR = 1e-3
DEFAULT_BATCH_SIZE = 8
#: sequences per forward pass while caching
_CHUNK = 16


def _check_lr(lr: Any) -> float:
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not 0 < float(lr) < 10:
        raise MiAssertInputError(f"lr must be a number in (0, 10); got {lr!r}")
    return float(lr)


def train_tuned_lens(model: Any, tokens: Any, *, steps: int = DEFAULT_STEPS,
                     lr: float = DEFAULT_LR, seed: int = 0,
                     batch_size: int = DEFAULT_BATCH_SIZE, weight_decay: float = 0.0,
                     bias: bool = True, embedding: bool = False) -> TunedLens:
    """A :class:`~mi_assert.lens.translators.TunedLens` for ``model`` trained on ``tokens``.

    ``tokens``: ``[n_sequences, pos]`` ids (e.g. :func:`~mi_assert.lens.data.text_windows` of
    training text) or equal-length strings. ``steps`` Adam steps at learning rate ``lr``
    (``weight_decay`` pulls the translators toward the identity), ``batch_size`` sequences per
    step, batches drawn with ``seed``. The lens's ``config.training`` records the settings, the
    token count, the wall time and the final mean KL per translator.

    ``embedding``: also train translator 0, which reads the embeddings
    (``blocks.0.hook_resid_pre``; kept for the ``tuned-lens`` layout, read by no mi-assert
    claim). Off by default: it then stays the identity, and training is a quarter faster on
    4 layers.
    """
    handle = resolve_model(model)
    steps = check_count(steps, "steps")
    batch_size = check_count(batch_size, "batch_size")
    lr = _check_lr(lr)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise MiAssertInputError(f"seed must be an int; got {seed!r}")
    if isinstance(weight_decay, bool) or not isinstance(weight_decay, (int, float)) or weight_decay < 0:
        raise MiAssertInputError(f"weight_decay must be a number >= 0; got {weight_decay!r}")
    if not isinstance(embedding, bool) or not isinstance(bias, bool):
        raise MiAssertInputError(f"embedding and bias must be True or False; got "
                                 f"embedding={embedding!r}, bias={bias!r}")
    toks = handle.to_tokens(tokens)
    if toks.shape[1] < 2:
        raise MiAssertInputError("training sequences need at least 2 tokens (BOS is not counted)")
    start = time.perf_counter()
    lens = TunedLens.for_model(handle, bias=bias)
    readout = Readout(handle)
    # translator indices trained and the hooks they read (entry 0: the embeddings)
    trained = [i for i in range(lens.n_layers) if embedding or i > 0]
    hooks = [lens.config.hook_names[i] for i in trained]
    bos = handle.bos_token_id
    mask = (toks != bos) if bos is not None else torch.ones_like(toks, dtype=torch.bool)
    if not bool(mask.any()):
        raise MiAssertInputError("every training token is BOS: nothing to train on")
    batch_of = _targets(handle, readout, toks, hooks)

    gen = torch.Generator().manual_seed(seed)
    params = [p for i in trained for p in lens.layer_translators[i].parameters()]
    opt = torch.optim.Adam(params, lr=lr, weight_decay=float(weight_decay))
    order: list[int] = []
    losses = torch.zeros(len(hooks))
    n = toks.shape[0]
    for _ in range(steps):
        if len(order) < min(batch_size, n):
            order += torch.randperm(n, generator=gen).tolist()
        idx = torch.tensor(order[:min(batch_size, n)])
        del order[:min(batch_size, n)]
        acts, target = batch_of(idx)
        m = mask[idx.to(mask.device)].to(target.device)
        total = torch.zeros((), device=target.device)
        target_logp = torch.log_softmax(target, dim=-1)
        with torch.enable_grad():
            for i, h in enumerate(acts):
                translator = lens.layer_translators[trained[i]]
                logits = readout(h + translator(h), toks[idx.to(toks.device)])
                kl = kl_to_target(target_logp, logits)
                loss = (kl * m).sum() / m.sum().clamp_min(1)
                losses[i] = float(loss.detach())
                total = total + loss
            grads = torch.autograd.grad(total, params)
        for p, g in zip(params, grads, strict=True):
            p.grad = g
        opt.step()
    lens.config.training = {
        "steps": steps, "lr": lr, "seed": seed, "batch_size": batch_size,
        "weight_decay": float(weight_decay), "trained_hooks": hooks, "optimizer": "Adam",
        "loss": "KL(final || lens)",
        "n_sequences": int(n), "n_tokens": int(mask.sum()), "seq_len": int(toks.shape[1]),
        "final_kl": {hook: round(float(v), 6) for hook, v in zip(hooks, losses, strict=True)},
        "seconds": round(time.perf_counter() - start, 2), "readout": readout.source,
    }
    return lens


def _targets(handle: Any, readout: Readout, toks: Tensor, hooks: list[str]
             ) -> Callable[[Tensor], tuple[list[Tensor], Tensor]]:
    """``batch(idx) -> (activations per translator, final logits)``, from a cache when it fits.

    With the module readout the cache keeps the last block's resid_post (``d_model`` floats a
    token, not ``d_vocab``) and the targets are decoded from it per batch; with the
    forward-pass readout it keeps the logits."""
    last = readout.last_hook
    n, t = toks.shape

    def run(chunk: Tensor) -> tuple[list[Tensor], Tensor, Tensor]:
        logits, cache = handle.run_with_cache(chunk, [*hooks, last])
        readout.verify(cache[last], logits)
        return [cache[h].float() for h in hooks], cache[last].float(), logits.float()

    first = run(toks[:_CHUNK])
    decode = readout.source.startswith("model modules")
    per_token = len(hooks) * handle.d_model + (handle.d_model if decode else handle.d_vocab_out)
    if n * t * per_token * 4 > CACHE_BYTES:
        def uncached(idx: Tensor) -> tuple[list[Tensor], Tensor]:
            acts, _, logits = run(toks[idx.to(toks.device)])
            return acts, logits

        return uncached
    acts_parts: list[list[Tensor]] = [[] for _ in hooks]
    final_parts: list[Tensor] = []
    for i in range(0, n, _CHUNK):
        chunk_acts, final_resid, logits = first if i == 0 else run(toks[i:i + _CHUNK])
        for j, a in enumerate(chunk_acts):
            acts_parts[j].append(a)
        final_parts.append(final_resid if decode else logits)  # the logits are dropped
    del first
    acts = [torch.cat(p) for p in acts_parts]
    final = torch.cat(final_parts)
    del acts_parts, final_parts

    def cached(idx: Tensor) -> tuple[list[Tensor], Tensor]:
        i = idx.to(final.device)
        if not decode:
            return [a[i] for a in acts], final[i]
        with torch.no_grad():
            return [a[i] for a in acts], readout(final[i], None).float()

    return cached
