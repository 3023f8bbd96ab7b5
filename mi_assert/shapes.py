"""Tensor shapes of the public API (jaxtyping annotations, as TransformerLens writes them).

Type checkers read each alias as ``torch.Tensor``; the string names the axes for readers and
for runtime checkers such as ``jaxtyping.jaxtyped``.
"""

from __future__ import annotations

from collections.abc import Callable

from jaxtyping import Float, Int
from torch import Tensor

#: token ids ``[batch, pos]``
Tokens = Int[Tensor, "batch pos"]
#: logits ``[batch, pos, d_vocab]``
Logits = Float[Tensor, "batch pos d_vocab"]
#: one value per prompt ``[batch]``
PerPrompt = Float[Tensor, "batch"]
#: the metric protocol every causal claim and sweep takes: logits -> one value per prompt
MetricFn = Callable[[Logits], PerPrompt]
#: activations at a hook (``[batch, pos, d]``, or ``[batch, pos, head, d_head]`` per head)
Activation = Float[Tensor, "batch pos *rest"]
#: SAE inputs / reconstructions and latents, over any leading axes
SAEInput = Float[Tensor, "*tokens d_in"]
SAELatents = Float[Tensor, "*tokens d_sae"]
#: a patching sweep's values: ``[n_layers, n_heads]`` or ``[n_layers, pos]`` (TL layout)
SweepValues = Float[Tensor, "n_layers cells"]
