"""What an edge outside a circuit carries: the ablated value of its sender.

A circuit run (:mod:`mi_assert.edges.circuit_run`) feeds every edge outside the circuit the
sender's output in a recorded run of the corrupted prompts. The ablation kind chooses that
run, by transforming the recorded corrupted run along the batch axis before any circuit runs:

* ``"corrupted"``: the corrupted run as recorded; prompt i's non-circuit edges carry corrupted
  prompt i's sender outputs.
* ``"mean"``: every sender output, residual and final residual replaced by its mean over the
  corrupted prompts, per position (taken in float64, cast back); every prompt's non-circuit
  edges carry the same mean output.
* ``"resample"``: every recorded tensor of prompt i taken from corrupted prompt ``perm[i]``,
  ``perm`` a seeded derangement of the batch (no prompt gets its own row).

The residuals a circuit run restarts from are sums of sender outputs and biases, so averaging
or permuting them along the batch axis gives exactly the residual the ablated outputs add up
to. ``embed`` is a sender like the others: the clean signal enters as clean embedding minus
the ablated embedding. The ablated run read out is ``F(ablated)``, the model with every edge
ablated this way, the baseline faithfulness is measured against.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import torch
from torch import Tensor

from mi_assert.edges.senders import RecordedRun
from mi_assert.errors import MiAssertInputError

AblationKind = Literal["corrupted", "mean", "resample"]

#: each ablation kind, with the one sentence evidence records for it
ABLATION_KINDS: dict[str, str] = {
    "corrupted": "every edge outside the circuit carries its sender's output on that prompt's "
                 "corrupted input (corrupted-input patching, denoise); the baseline F(ablated) "
                 "is the corrupted run",
    "mean": "every edge outside the circuit carries its sender's output averaged over the "
            "corrupted prompts, per position; the baseline F(ablated) is the model with every "
            "edge carrying that mean",
    "resample": "every edge outside the circuit carries its sender's output on another "
                "corrupted prompt of the batch (a derangement seeded with ablation_seed={seed}); "
                "the baseline F(ablated) is the model with every edge carrying it, i.e. the "
                "corrupted run of the other prompt, read with this prompt's metric",
}


def check_ablation(ablation: Any, batch: int | None = None) -> str:
    """``ablation`` as a kind of :data:`ABLATION_KINDS`; ``"resample"`` needs ``batch >= 2``."""
    if not isinstance(ablation, str) or ablation not in ABLATION_KINDS:
        raise MiAssertInputError(f"ablation={ablation!r} unknown; allowed: "
                                 f"{', '.join(repr(k) for k in ABLATION_KINDS)}")
    if ablation == "resample" and batch is not None and batch < 2:
        raise MiAssertInputError(
            f"ablation='resample' needs at least 2 prompts (each prompt's ablated values come "
            f"from another prompt of the batch); got {batch}")
    return ablation


def describe_ablation(ablation: str, seed: int = 0) -> str:
    """``"<kind>: <sentence>"`` as evidence settings record it."""
    return f"{ablation}: {ABLATION_KINDS[ablation].format(seed=int(seed))}"


def derangement(n: int, seed: int) -> Tensor:
    """A permutation of ``range(n)`` with no fixed point, ``n >= 2``: a seeded random order
    ``p`` and a seeded shift ``s`` in ``1..n-1``; prompt ``p[j]`` gets ``p[(j - s) % n]``."""
    if n < 2:
        raise MiAssertInputError(f"a derangement needs at least 2 prompts; got {n}")
    gen = torch.Generator().manual_seed(int(seed))
    order = torch.randperm(n, generator=gen)
    shift = int(torch.randint(1, n, (1,), generator=gen))
    out = torch.empty(n, dtype=torch.long)
    out[order] = order.roll(shift)
    return out


def _batch_mean(x: Tensor, dim: int) -> Tensor:
    mean = x.double().mean(dim=dim, keepdim=True).to(x.dtype)
    return mean.expand_as(x).contiguous()


def ablated_run(run: RecordedRun, ablation: str, seed: int = 0) -> RecordedRun:
    """The run whose sender outputs the edges outside a circuit carry (module docstring)."""
    batch = int(run.final_resid.shape[0])
    check_ablation(ablation, batch)
    if ablation == "corrupted":
        return run
    transform: Callable[[Tensor, int], Tensor]
    if ablation == "mean":
        transform = _batch_mean
    else:
        perm = derangement(batch, seed).to(run.final_resid.device)

        def transform(x: Tensor, dim: int) -> Tensor:
            return x.index_select(dim, perm)

    return RecordedRun(logits=transform(run.logits, 0), outputs=transform(run.outputs, 1),
                       resid_pre=[transform(r, 0) for r in run.resid_pre],
                       final_resid=transform(run.final_resid, 0))


__all__ = ["ABLATION_KINDS", "AblationKind", "ablated_run", "check_ablation", "derangement",
           "describe_ablation"]
