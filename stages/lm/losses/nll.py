"""Token negative log-likelihood: SFT (GT-SFT, SF-SFT, CF-SFT).

Why token-mean: every trained token counts equally across the global batch, independent of how examples were
packed into micro-batches or spread over ranks (``per_sequence=True`` gives each sequence equal weight instead).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from stages.lm.engine.packing import PackedBatch
from stages.lm.losses.base import LossOutput


@dataclass
class NLLLoss:
    per_sequence: bool = False

    def units(self, batch: PackedBatch) -> float:
        if self.per_sequence:
            return float((batch.per_doc_sum(batch.loss_mask.float()) > 0).sum())
        return float(batch.loss_mask.sum())

    def __call__(self, logp: torch.Tensor, batch: PackedBatch) -> LossOutput:
        mask = batch.loss_mask.to(logp.dtype)
        nll = -(logp * mask)
        if self.per_sequence:
            per_doc = batch.per_doc_sum(nll)
            counts = batch.per_doc_sum(mask)
            loss = (per_doc / counts.clamp(min=1)).sum()
        else:
            loss = nll.sum()
        return LossOutput(loss=loss, metrics={"nll": loss.detach()})
