"""From final residuals of stacked variants to one metric value per variant and prompt."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from mi_assert.causal.metrics import evaluate_metric


class MetricReadout:
    """``readout(final_resid)``: ``[n_variants * batch, pos, d_model]`` → ``[n_variants, batch]``.

    Applies ``ln_final``, the unembedding and the logit soft cap as the model's forward does.
    A metric that reads one fixed position (``metric.position`` an int, with ``at_position``)
    is unembedded at that position only; any other metric sees full logits per variant.
    """

    def __init__(self, model: Any, metric: Any, batch: int) -> None:
        self.model = model
        self.metric = metric
        self.batch = batch
        position = getattr(metric, "position", None)
        self.position: int | None = (
            position if isinstance(position, int) and callable(getattr(metric, "at_position", None))
            else None)
        self.softcap = float(getattr(model.cfg, "output_logits_soft_cap", -1.0) or -1.0)

    @property
    def full_logits(self) -> bool:
        return self.position is None

    def logits(self, final_resid: Tensor) -> Tensor:
        """Logits of residuals ``[rows, pos, d_model]`` (``[rows, 1, d_vocab]`` at the position)."""
        x = final_resid if self.position is None else \
            final_resid[:, self.position % final_resid.shape[1]][:, None]
        if self.model.cfg.normalization_type is not None:
            x = self.model.ln_final(x)
        logits = self.model.unembed(x)
        if self.softcap > 0:
            logits = self.softcap * torch.tanh(logits / self.softcap)
        return logits

    def __call__(self, final_resid: Tensor) -> Tensor:
        logits = self.logits(final_resid)
        n_var = logits.shape[0] // self.batch
        out = []
        for v in range(n_var):
            part = logits[v * self.batch:(v + 1) * self.batch]
            if self.position is None:
                out.append(evaluate_metric(self.metric, part, self.batch))
            else:
                out.append(self.metric.at_position(part[:, 0]).float())
        return torch.stack(out)
