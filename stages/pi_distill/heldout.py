"""The held-out measurement after every step: the student answers prompts it never trains on, without the
privileged information; that is the number π-Distill exists to raise.

Why a rotating slice: evaluating the whole held-out set every step would cost as much as a rollout batch at scale,
so each step takes the next ``student_eval_prompts`` held-out prompts in a fixed cycle, one sample each at the
training temperature, seeded from (seed, step). For OPSD, whose rollouts are the student's, the same slice is also
answered by the teacher view (its reward, and KL(teacher || student) on its samples), so both variants log the
same quantities.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from stages.pi_distill import rollout as R
from stages.pi_distill.metrics import mean
from stages.pi_distill.state import derived_seed


def slice_for(step: int, heldout: Sequence[R.Encoded], size: int) -> list[R.Encoded]:
    k = min(size, len(heldout))
    start = (step * k) % len(heldout)
    return [heldout[(start + i) % len(heldout)] for i in range(k)]


def _answer(trainer: Any, prompts: list[R.Encoded], view: str, params: Any, seed: int, thinking: bool) -> list[R.Rollout]:
    out = R.sample(trainer, prompts, view, n=1, sampling=params.sampling, seed=seed, thinking=thinking,
                   batch_size=params.generation_batch_size)
    R.grade(out, prompts)
    return out


def evaluate(trainer: Any, heldout: Sequence[R.Encoded], step: int, params: Any, seed: int,
             thinking: bool) -> dict[str, Any]:
    prompts = slice_for(step, heldout, params.student_eval_prompts)
    student = _answer(trainer, prompts, "student", params, derived_seed("eval-student", seed, step), thinking)
    record: dict[str, Any] = {
        "student_reward": mean([r.reward for r in student]),
        "student_response_length": mean([float(len(r.token_ids)) for r in student]),
        "student_eval_prompts": len(prompts),
    }
    if params.variant == "opsd":
        teacher = _answer(trainer, prompts, "teacher", params, derived_seed("eval-teacher", seed, step), thinking)
        R.score_views(trainer, prompts, teacher)
        tokens = sum(len(r.lp_teacher) for r in teacher)
        record.update(teacher_reward=mean([r.reward for r in teacher]),
                      kl_teacher_student=sum(r.log_ratio("teacher") for r in teacher) / tokens if tokens else None)
    return record
