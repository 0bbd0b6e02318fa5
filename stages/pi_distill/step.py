"""One rollout step, split where a stop signal may land: ``collect`` (sample, grade, score, shape; no weight
changes) and ``update`` (``ppo_epochs`` passes over mini-batches of whole prompts, one optimizer step each).

Why split there: until the first optimizer step the weights are those of the step's start, so a stop request
then rewinds the data position and checkpoints a consistent state; once updates began, the step is finished first.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from stages.pi_distill import rollout as R
from stages.pi_distill.metrics import mean
from stages.pi_distill.state import derived_seed

UPDATE_KEYS = ("loss", "teacher_loss", "student_loss", "kl_teacher_student", "teacher_clip_fraction",
               "student_clip_fraction", "student_ratio", "grad_norm", "lr")


@dataclass
class Batch:
    prompts: list[R.Encoded]
    rollouts: list[R.Rollout]
    groups: list[tuple[int, list[Any]]]  # (prompt index, training group) of the kept responses
    generation_s: float


def collect(trainer: Any, prompts: list[R.Encoded], step: int, params: Any, seed: int, thinking: bool) -> Batch:
    sampler = "teacher" if params.variant == "pi-distill" else "student"
    started = time.perf_counter()
    rollouts = R.sample(trainer, prompts, sampler, n=params.group_size, sampling=params.sampling,
                        seed=derived_seed("rollout", seed, step), thinking=thinking,
                        batch_size=params.generation_batch_size)
    generation_s = time.perf_counter() - started
    R.grade(rollouts, prompts)
    pairs = R.score_views(trainer, prompts, rollouts)
    R.shape(rollouts, params.group_size, params.beta, sampler, params.drop_zero_variance_groups)
    return Batch(prompts, rollouts, R.training_groups(params.variant, rollouts, pairs), generation_s)


def update(trainer: Any, objective: Any, batch: Batch, params: Any) -> list[dict[str, float]]:
    per = params.mini_batch_size or params.prompts_per_step
    chunks = [set(range(i, i + per)) for i in range(0, len(batch.prompts), per)]
    records = []
    for _ in range(params.ppo_epochs):
        for chunk in chunks:
            groups = [g for p, g in batch.groups if p in chunk]
            if groups:
                records.append(trainer.train_step(groups, objective))
    return records


def record(batch: Batch, updates: list[dict[str, float]], params: Any) -> dict[str, Any]:
    """The step's numbers from its rollouts and its optimizer steps (the held-out ones are added by the run)."""
    rs = batch.rollouts
    sampler = "teacher" if params.variant == "pi-distill" else "student"
    tokens = sum(len(r.token_ids) for r in rs)
    kl = sum(r.log_ratio(sampler) for r in rs) / tokens if tokens else None
    G = params.group_size
    dropped = sum(1 for i in range(0, len(rs), G) if not any(r.keep for r in rs[i:i + G]))
    out: dict[str, Any] = {
        "rollout_reward": mean([r.reward for r in rs]),
        "rollout_accuracy": mean([float(r.correct) for r in rs]),
        "response_length": mean([float(len(r.token_ids)) for r in rs]),
        "truncated_share": mean([float(r.finish == "length") for r in rs]),
        "teacher_prompt_length": mean([float(len(e.teacher)) for e in batch.prompts]),
        "student_prompt_length": mean([float(len(e.student)) for e in batch.prompts]),
        "advantage_mean": mean([r.advantage for r in rs if r.keep]),
        "shaped_advantage_mean": mean([r.shaped for r in rs if r.keep]),
        "kl_penalty_mean": mean([params.beta * r.log_ratio(sampler) for r in rs]),
        "dropped_groups": dropped,
        "dropped_group_share": dropped / len(batch.prompts),
        "optimizer_steps": len(updates),
        "generation_time_s": batch.generation_s,
    }
    if sampler == "teacher":
        out["teacher_reward"] = out["rollout_reward"]
        out["kl_teacher_student"] = kl
    else:
        out["kl_student_teacher"] = kl
    for key in UPDATE_KEYS:
        value = mean([u[key] for u in updates if key in u])
        if value is not None:
            out[f"update_{key}" if key == "kl_teacher_student" else key] = value
    return out


def rollout_items(batch: Batch, params: Any) -> list[dict[str, Any]]:
    sampler = "teacher" if params.variant == "pi-distill" else "student"
    out = []
    for r in batch.rollouts:
        row = batch.prompts[r.prompt].row
        out.append({"index": row.index, "data_source": row.data_source, "view": sampler,
                    "privileged_kind": row.privileged_kind, "prompt": row.messages[-1]["content"],
                    "response": r.text, "ground_truth": row.ground_truth, "reward": r.reward, "correct": r.correct,
                    "verdict": r.verdict, "finish": r.finish, "response_tokens": len(r.token_ids),
                    "advantage": r.advantage, "shaped_advantage": r.shaped,
                    "log_ratio": r.log_ratio(sampler), "trained": r.keep})
    return out
