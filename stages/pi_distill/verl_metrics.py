"""verl's logs of a π-Distill/OPSD run in the stage's own names: ``metrics.jsonl`` and ``rollouts.jsonl``.

Why translate: the analyzer and the tests read the same names whichever engine trained (see ``metrics``), so
after each attempt verl's ``file`` logger records and rollout dumps become them. The rollout reward is verl's
``critic/score/mean`` (π-Distill: the teacher view's reward, ``teacher_reward``); ``student_reward`` is verl's
validation on the held-out prompts in the student view (``val-core/<data source>/reward/mean@1``, averaged over the
data sources); the loss terms, KL and shaping numbers are the trainer's ``pi_distill/*``. A key a step did not log
is absent from its record. Later attempts win per step (a resumed run redoes the steps after its checkpoint).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from stages.pi_distill.metrics import mean, read_jsonl

# our name -> verl 0.9.1 key (the trainer's `file` logger writes {"step": n, "data": {key: value}})
VERL_KEYS = {
    "rollout_reward": "critic/score/mean",
    "response_length": "response_length/mean",
    "loss": "actor/pg_loss",
    "update_clip_fraction": "actor/pg_clipfrac",
    "grad_norm": "actor/grad_norm",
    "lr": "actor/lr",
    "entropy": "actor/entropy",
    "step_time_s": "timing_s/step",
    "generation_time_s": "timing_s/gen",
    "update_time_s": "timing_s/update_actor",
    "throughput_tokens_per_s_per_device": "perf/throughput",
}
OWN_KEYS = ("kl_teacher_student", "kl_student_teacher", "teacher_loss", "student_loss", "student_clip_fraction",
            "student_ratio", "advantage_mean", "shaped_advantage_mean", "kl_penalty_mean", "dropped_groups",
            "dropped_group_share", "skipped_update")


def step_record(step: int, data: dict[str, Any], variant: str) -> dict[str, Any]:
    record: dict[str, Any] = {"step": step}
    for ours, theirs in VERL_KEYS.items():
        if theirs in data:
            record[ours] = data[theirs]
    for key in OWN_KEYS:
        if f"pi_distill/{key}" in data:
            record[key] = data[f"pi_distill/{key}"]
    if variant == "pi-distill" and "rollout_reward" in record:
        record["teacher_reward"] = record["rollout_reward"]
    student = [float(v) for k, v in data.items() if k.startswith("val-core/") and k.endswith("/reward/mean@1")]
    if student:
        record["student_reward"] = mean(student)
    return record


def verl_records(log_files: list[Path], variant: str) -> list[dict[str, Any]]:
    """Merge verl's per-attempt logs (later attempts win per step) into our records, ordered by step."""
    by_step: dict[int, dict[str, Any]] = {}
    for path in log_files:
        for entry in read_jsonl(path):
            if "step" in entry and isinstance(entry.get("data"), dict):
                by_step[int(entry["step"])] = entry["data"]
    return [step_record(step, by_step[step], variant) for step in sorted(by_step)]


def verl_rollouts(rollout_dir: Path, every: int, view: str) -> list[dict[str, Any]]:
    """verl's per-step rollout dumps (the sampling view's responses), every ``every``-th step and the first."""
    out: list[dict[str, Any]] = []
    steps = sorted(int(p.stem) for p in rollout_dir.glob("*.jsonl") if p.stem.isdigit()) if rollout_dir.is_dir() \
        else []
    for step in steps:
        if step % every and step != 1:
            continue
        for r in read_jsonl(rollout_dir / f"{step}.jsonl"):
            out.append({"step": step, "view": view, "prompt": r.get("input"), "response": r.get("output"),
                        "ground_truth": r.get("gts"), "reward": r.get("score"), "correct": r.get("correct")})
    return out
