"""Per-step records (``metrics.jsonl``), sampled rollouts (``rollouts.jsonl``) and the run's summary.

Why these names: the analyzer and the tests read them, and they say which view each number belongs to.
``student_reward`` is the student view's reward on the held-out slice (prompts never trained on, answered without
the privileged information); ``teacher_reward`` the teacher view's reward (π-Distill: its rollouts on the step's
prompts; OPSD, whose rollouts are the student's: the held-out slice with the privileged information);
``kl_teacher_student`` the per-token Monte-Carlo KL(teacher || student) on teacher samples (OPSD also logs
``kl_student_teacher`` on its rollouts). Loss terms (``loss``, ``teacher_loss``, ``student_loss``), clip fractions,
lengths, dropped groups and timings come with them. The engine's own per-optimizer-step log stays in
``native/metrics.jsonl``. A resumed run appends; ``finish`` keeps the latest record of every step.
"""

from __future__ import annotations

from typing import Any

from stages.lm.engine.step_log import StepLog, read_jsonl, wandb_run_id, write_jsonl  # noqa: F401

SUMMARY_KEYS = ("teacher_reward", "student_reward", "kl_teacher_student", "loss", "response_length")


def mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def mean_of(records: list[dict[str, Any]], key: str) -> float | None:
    return mean([float(r[key]) for r in records if r.get(key) is not None])


def summarize(records: list[dict[str, Any]], window: int = 5) -> dict[str, float | int | None]:
    """First and last values (averaged over a few steps) of the numbers a person looks at first."""
    if not records:
        return {"steps": 0}
    window = max(1, min(window, len(records) // 2))  # a short run: first and last do not overlap
    head, tail = records[:window], records[-window:]
    out: dict[str, float | int | None] = {"steps": int(records[-1]["step"])}
    for key in SUMMARY_KEYS:
        first, last = mean_of(head, key), mean_of(tail, key)
        out[f"{key}_first"] = None if first is None else round(first, 6)
        out[f"{key}_last"] = None if last is None else round(last, 6)
    return out
