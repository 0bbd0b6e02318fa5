"""DPO sigmoid loss against a frozen reference: one SPIN iteration (SELF).

Why: SPIN's update is DPO with chosen = the ground-truth response, rejected = the model's own sample and
reference = the model at the start of the iteration (methods reference, section 3):
margin = (log p(chosen) - log p_ref(chosen)) - (log p(rejected) - log p_ref(rejected)), summed over response
tokens; loss = -log sigmoid(beta * margin) (or the hinge variant relu(1 - beta * margin)).

Data contract: each group is [chosen sample, rejected sample] with doc field ``chosen`` = 1.0 / 0.0 and token
field ``ref_logprobs`` (from ``Trainer.logprobs(..., reference=True)``). Averaged over pairs.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from stages.lm.engine.packing import PackedBatch
from stages.lm.errors import LMInputError
from stages.lm.losses.base import LossOutput, required_field


def pair_margins(logp: torch.Tensor, batch: PackedBatch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(margin, chosen log-ratio, rejected log-ratio), one entry per group of the micro-batch."""
    ref = required_field(batch, "ref_logprobs")
    chosen = required_field(batch, "chosen", "doc")
    mask = batch.loss_mask.to(logp.dtype)
    log_ratio = batch.per_doc_sum(logp * mask) - batch.per_doc_sum(ref.to(logp.dtype) * mask)
    n = batch.num_groups
    ones = torch.ones_like(chosen)
    n_chosen = torch.zeros(n, device=logp.device).index_add(0, batch.group_index, chosen)
    n_docs = torch.zeros(n, device=logp.device).index_add(0, batch.group_index, ones)
    if not (bool((n_chosen == 1).all()) and bool((n_docs == 2).all())):
        raise LMInputError("DPO groups must be exactly [chosen, rejected] with doc field chosen = 1.0 / 0.0")
    zeros = torch.zeros(n, dtype=logp.dtype, device=logp.device)
    c = zeros.index_add(0, batch.group_index, log_ratio * chosen.to(logp.dtype))
    r = zeros.index_add(0, batch.group_index, log_ratio * (1 - chosen).to(logp.dtype))
    return c - r, c, r


@dataclass
class DPOLoss:
    beta: float = 0.1
    loss_type: str = "sigmoid"

    def __post_init__(self) -> None:
        if self.loss_type not in ("sigmoid", "hinge"):
            raise LMInputError(f"DPO loss_type must be sigmoid or hinge, got {self.loss_type!r}")

    def units(self, batch: PackedBatch) -> float:
        return float(batch.num_groups)

    def __call__(self, logp: torch.Tensor, batch: PackedBatch) -> LossOutput:
        margin, c, r = pair_margins(logp, batch)
        z = self.beta * margin
        losses = -F.logsigmoid(z) if self.loss_type == "sigmoid" else torch.relu(1 - z)
        metrics = {
            "reward_accuracy": (margin > 0).float().sum(),
            "reward_margin": z.detach().sum(),
            "chosen_reward": (self.beta * c).detach().sum(),
            "rejected_reward": (self.beta * r).detach().sum(),
        }
        return LossOutput(loss=losses.sum(), metrics=metrics)
