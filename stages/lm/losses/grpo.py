"""GRPO: clipped policy gradient with group-normalised advantages (ON-RL).

Why these pieces (methods reference, section 4): sample G responses per prompt, reward each, advantage
A_i = (r_i - mean(r)) / std(r) for every token of response i; per token maximise
min(rho * A, clip(rho, 1 - eps_low, 1 + eps_high) * A) with rho = pi / pi_old, optionally minus
beta * k3-KL to a reference (pi_ref / pi - log(pi_ref / pi) - 1). Token-mean aggregation by default (no length
bias); ``seq-mean-token-mean`` gives each response equal weight.

Data contract: token fields ``old_logprobs`` and ``advantages`` on response tokens (``ref_logprobs`` when
``kl_beta > 0``). ``group_advantages`` computes the advantages from rewards.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from stages.lm.engine.packing import PackedBatch
from stages.lm.errors import LMInputError
from stages.lm.losses.base import LossOutput, required_field


def group_advantages(rewards: Sequence[float], group_size: int, *, scale_by_std: bool = True,
                     eps: float = 1e-6) -> list[float]:
    """(r - group mean) / (group std + eps) for consecutive groups of ``group_size`` rewards."""
    if group_size < 1 or len(rewards) % group_size:
        raise LMInputError(f"{len(rewards)} rewards do not split into groups of {group_size}")
    r = torch.tensor(rewards, dtype=torch.float64).view(-1, group_size)
    centred = r - r.mean(dim=1, keepdim=True)
    if scale_by_std:
        std = r.std(dim=1, keepdim=True, unbiased=group_size > 1) if group_size > 1 else torch.ones_like(r)
        centred = centred / (std + eps)
    return centred.flatten().tolist()


def clipped_surrogate(ratio: torch.Tensor, adv: torch.Tensor, low: float, high: float) -> torch.Tensor:
    """Per-token PPO loss -min(rho A, clip(rho, 1-low, 1+high) A)."""
    return -torch.minimum(ratio * adv, torch.clamp(ratio, 1 - low, 1 + high) * adv)


@dataclass
class GRPOLoss:
    clip_low: float = 0.2
    clip_high: float | None = None
    kl_beta: float = 0.0
    aggregation: str = "token-mean"

    def __post_init__(self) -> None:
        if self.aggregation not in ("token-mean", "seq-mean-token-mean"):
            raise LMInputError(f"GRPO aggregation must be token-mean or seq-mean-token-mean, got {self.aggregation!r}")

    def units(self, batch: PackedBatch) -> float:
        if self.aggregation == "token-mean":
            return float(batch.loss_mask.sum())
        return float((batch.per_doc_sum(batch.loss_mask.float()) > 0).sum())

    def __call__(self, logp: torch.Tensor, batch: PackedBatch) -> LossOutput:
        mask = batch.loss_mask.to(logp.dtype)
        old = required_field(batch, "old_logprobs").to(logp.dtype)
        adv = required_field(batch, "advantages").to(logp.dtype)
        high = self.clip_high if self.clip_high is not None else self.clip_low
        ratio = torch.exp((logp - old) * mask)
        per_token = clipped_surrogate(ratio, adv, self.clip_low, high)
        metrics = {}
        if self.kl_beta > 0:
            delta = (required_field(batch, "ref_logprobs").to(logp.dtype) - logp) * mask
            kl = torch.exp(delta) - delta - 1
            per_token = per_token + self.kl_beta * kl
            metrics["kl"] = kl.detach()
        clipped = ((ratio < 1 - self.clip_low) | (ratio > 1 + high)).to(logp.dtype)
        metrics.update(clip_fraction=clipped, ratio=ratio.detach())
        if self.aggregation == "token-mean":
            reduce = lambda x: (x * mask).sum()
        else:
            counts = batch.per_doc_sum(mask).clamp(min=1)
            reduce = lambda x: (batch.per_doc_sum(x * mask) / counts).sum()
        return LossOutput(loss=reduce(per_token), metrics={k: reduce(v) for k, v in metrics.items()})
