"""SPIN's loss: the engine's DPO loss (``stages.lm.losses.dpo``), plus the policy's own log-probabilities.

Why a wrapper: one SPIN iteration *is* DPO with chosen = ground truth, rejected = the model's own sample and
reference = the model at the start of the iteration, so the loss is the shared one (sigmoid or hinge on
beta * margin, averaged over pairs). What SPIN's record needs beyond DPO's rewards is how the policy itself ranks
the two sides: the summed log-probs of the chosen and the rejected response and their gap, per pair.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from stages.lm.losses.base import LossOutput, required_field
from stages.lm.losses.dpo import DPOLoss


@dataclass
class SPINLoss:
    beta: float = 0.1
    loss_type: str = "sigmoid"
    _dpo: DPOLoss = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._dpo = DPOLoss(beta=self.beta, loss_type=self.loss_type)

    def units(self, batch: Any) -> float:
        return self._dpo.units(batch)

    def __call__(self, logp: Any, batch: Any) -> LossOutput:
        out = self._dpo(logp, batch)
        chosen = required_field(batch, "chosen", "doc").to(logp.dtype)
        per_doc = batch.per_doc_sum(logp.detach() * batch.loss_mask.to(logp.dtype))
        logp_chosen = (per_doc * chosen).sum()
        logp_rejected = (per_doc * (1 - chosen)).sum()
        out.metrics.update(logp_chosen=logp_chosen, logp_rejected=logp_rejected, logp_gap=logp_chosen - logp_rejected)
        return out
