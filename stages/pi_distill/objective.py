"""The losses the engine minimises: π-Distill's α-mix of the teacher and student terms, or OPSD's student GRPO.

Why thin wrappers: the terms themselves are ``stages.lm.losses`` (``PiDistillLoss``: teacher clipped PPO on the
teacher view with rho = pi_T / pi_T,old, student clipped surrogate on the same tokens under the student view with
rho = pi_S / sg[pi_T], total alpha * teacher + (1 - alpha) * student, token-mean over the teacher's response
tokens; ``GRPOLoss`` for OPSD). The KL of the paper's objectives enters through the shaped advantages (as in the
reference code), not as a separate loss term. What the stage adds is the per-step diagnostics the engine's loss
does not report: the clip fraction of each ratio and the student's mean importance ratio.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from stages.lm.engine.packing import PackedBatch
from stages.lm.losses.base import LossOutput
from stages.lm.losses.grpo import GRPOLoss
from stages.lm.losses.pi_distill import PiDistillLoss


def view_masks(batch: PackedBatch) -> tuple[torch.Tensor, torch.Tensor]:
    """Trained tokens of the teacher-view and of the student-view documents of a packed batch."""
    teacher = batch.doc_fields["teacher"]
    is_teacher = torch.cat([teacher, teacher.new_zeros(1)])[batch.doc_index] > 0.5
    return batch.loss_mask & is_teacher, batch.loss_mask & ~is_teacher


def _outside(ratio: torch.Tensor, eps: float) -> torch.Tensor:
    return ((ratio < 1 - eps) | (ratio > 1 + eps)).float().sum()


@dataclass
class PiDistillObjective:
    alpha: float = 0.5
    clip: float = 0.2
    student_clip: float = 0.2
    base: PiDistillLoss = field(init=False)

    def __post_init__(self) -> None:
        self.base = PiDistillLoss(alpha=self.alpha, clip=self.clip, student_clip=self.student_clip)

    def units(self, batch: PackedBatch) -> float:
        return self.base.units(batch)

    def __call__(self, logp: torch.Tensor, batch: PackedBatch) -> LossOutput:
        out = self.base(logp, batch)
        with torch.no_grad():
            t_mask, s_mask = view_masks(batch)
            lp_t, lp_s = logp[t_mask].detach(), logp[s_mask].detach()
            old = batch.token_fields["old_logprobs"].to(logp.dtype)[t_mask]
            ratio, rho = torch.exp(lp_t - old), torch.exp(lp_s - lp_t)
            out.metrics.update(teacher_clip_fraction=_outside(ratio, self.clip),
                               student_clip_fraction=_outside(rho, self.student_clip),
                               student_ratio=rho.sum())
        return out


@dataclass
class OPSDObjective:
    """GRPO's clipped surrogate on the student's own samples, advantages shaped by the reverse KL to the teacher.

    The authors' extra term ``beta * mean(sg(log pi_T) - log pi_S)``, whose gradient does not depend on the
    teacher, is deliberately not added (the package docstring says why; the verl engine leaves it out too)."""

    clip: float = 0.2
    base: GRPOLoss = field(init=False)

    def __post_init__(self) -> None:
        self.base = GRPOLoss(clip_low=self.clip, clip_high=self.clip, kl_beta=0.0, aggregation="token-mean")

    def units(self, batch: PackedBatch) -> float:
        return self.base.units(batch)

    def __call__(self, logp: torch.Tensor, batch: PackedBatch) -> LossOutput:
        out = self.base(logp, batch)
        out.metrics = {"student_loss": out.loss.detach(), "student_clip_fraction": out.metrics["clip_fraction"],
                       "student_ratio": out.metrics["ratio"]}
        return out


def make_objective(params: Any) -> Any:
    if params.variant == "opsd":
        return OPSDObjective(clip=params.clip_ratio)
    return PiDistillObjective(alpha=params.alpha, clip=params.clip_ratio, student_clip=params.student_clip_ratio)
