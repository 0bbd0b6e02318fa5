"""pi-Distill: one set of weights as a teacher that sees privileged information and a student that does not (PI).

Why this form (methods reference, section 5; arXiv 2602.04942): responses are sampled from the teacher view
(prompt + privileged information I); GRPO advantages are shaped by the teacher-student gap,
A' = A - beta * sum_t (log pi_T - log pi_S) (``shaped_advantages``, computed by the stage without gradients);
the teacher term is the clipped PPO loss on the teacher view; the student term scores the *same* response tokens
under the student view (prompt without I) with rho = exp(log pi_S - sg[log pi_T]) and the same clipped surrogate;
total = alpha * teacher + (1 - alpha) * student. alpha = 1 trains the teacher view only, alpha = 0 the student.

Data contract: each group is [teacher-view sample, student-view sample] with doc field ``teacher`` = 1.0 / 0.0,
the same response tokens in both (trained by ``loss_mask``), token fields ``advantages`` (shaped, on both) and
``old_logprobs`` (teacher view under the sampling policy). Both views are packed into one forward pass.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from stages.lm.engine.packing import PackedBatch
from stages.lm.errors import LMInputError
from stages.lm.losses.base import LossOutput, required_field
from stages.lm.losses.grpo import clipped_surrogate


def shaped_advantages(advantages: torch.Tensor, teacher_logp_sum: torch.Tensor, student_logp_sum: torch.Tensor,
                      beta: float) -> torch.Tensor:
    """A - beta * (sum log pi_T - sum log pi_S), per response (all arguments are per-response tensors)."""
    return advantages - beta * (teacher_logp_sum - student_logp_sum)


def _view_masks(batch: PackedBatch) -> tuple[torch.Tensor, torch.Tensor]:
    teacher = required_field(batch, "teacher", "doc")
    is_teacher_doc = torch.cat([teacher, teacher.new_zeros(1)])[batch.doc_index] > 0.5
    return batch.loss_mask & is_teacher_doc, batch.loss_mask & ~is_teacher_doc


@dataclass
class PiDistillLoss:
    alpha: float = 0.5
    clip: float = 0.2
    student_clip: float = 0.2

    def __post_init__(self) -> None:
        if not 0.0 <= self.alpha <= 1.0:
            raise LMInputError(f"pi-Distill alpha must be in [0, 1], got {self.alpha}")

    def units(self, batch: PackedBatch) -> float:
        return float(_view_masks(batch)[0].sum())

    def __call__(self, logp: torch.Tensor, batch: PackedBatch) -> LossOutput:
        t_mask, s_mask = _view_masks(batch)
        if int(t_mask.sum()) != int(s_mask.sum()):
            raise LMInputError("pi-Distill pairs must train the same response tokens in the teacher and student view")
        adv = required_field(batch, "advantages").to(logp.dtype)[t_mask]
        old = required_field(batch, "old_logprobs").to(logp.dtype)[t_mask]
        lp_t, lp_s = logp[t_mask], logp[s_mask]
        ratio_t = torch.exp(lp_t - old)
        teacher = clipped_surrogate(ratio_t, adv, self.clip, self.clip)
        rho = torch.exp(lp_s - lp_t.detach())
        student = clipped_surrogate(rho, adv, self.student_clip, self.student_clip)
        loss = self.alpha * teacher.sum() + (1 - self.alpha) * student.sum()
        metrics = {
            "teacher_loss": teacher.detach().sum(),
            "student_loss": student.detach().sum(),
            "kl_teacher_student": (lp_t - lp_s).detach().sum(),
        }
        return LossOutput(loss=loss, metrics=metrics)
