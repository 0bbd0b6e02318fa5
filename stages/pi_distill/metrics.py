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

import json
import os
import re
from pathlib import Path
from typing import Any

SUMMARY_KEYS = ("teacher_reward", "student_reward", "kl_teacher_student", "loss", "response_length")


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:  # a line cut by a kill mid-write: that step is logged again on resume
                continue
    return out


def write_jsonl(path: Path, records: list[dict[str, Any]]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        for record in records:
            fh.write(json.dumps(record, default=float) + "\n")
    tmp.replace(path)


def mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def mean_of(records: list[dict[str, Any]], key: str) -> float | None:
    return mean([float(r[key]) for r in records if r.get(key) is not None])


def wandb_run_id(run_id: str, spec_hash: str | None) -> str:
    """Stable across attempts, so a requeued job logs to the same wandb run."""
    digest = (spec_hash or "").split(":")[-1][:8]
    return re.sub(r"[^A-Za-z0-9_-]", "-", f"{run_id}-{digest}".strip("-"))[:120]


class StepLog:
    def __init__(self, out: Path, ctx: Any) -> None:
        from stages.lm.engine.metrics import MetricsLogger

        tracking = ctx.runtime.tracking
        use_wandb = tracking.wandb and tracking.mode != "disabled"
        if use_wandb:
            os.environ.setdefault("WANDB_RUN_ID", wandb_run_id(ctx.manifest.run_id, ctx.manifest.provenance.spec_hash))
            os.environ.setdefault("WANDB_RESUME", "allow")
            if tracking.entity:
                os.environ.setdefault("WANDB_ENTITY", tracking.entity)
            if tracking.group:
                os.environ.setdefault("WANDB_RUN_GROUP", tracking.group)
        self.out = out
        self.rollout_dir = out / "native" / "rollouts"
        self.rollout_dir.mkdir(parents=True, exist_ok=True)
        self.logger = MetricsLogger(out / "metrics.jsonl", wandb_project=tracking.project if use_wandb else None,
                                    wandb_mode=tracking.mode, run_name=ctx.manifest.run_id,
                                    config=ctx.params.model_dump(mode="json"))

    def log(self, step: int, record: dict[str, Any]) -> None:
        self.logger.log(step, {k: v for k, v in record.items() if v is not None})

    def rollouts(self, step: int, items: list[dict[str, Any]]) -> None:
        write_jsonl(self.rollout_dir / f"{step}.jsonl", [{"step": step, **item} for item in items])

    def close(self) -> None:
        self.logger.close()

    def finish(self) -> list[dict[str, Any]]:
        by_step = {int(r["step"]): r for r in read_jsonl(self.out / "metrics.jsonl") if "step" in r}
        records = [by_step[k] for k in sorted(by_step)]
        write_jsonl(self.out / "metrics.jsonl", records)
        steps = sorted(int(q.stem) for q in self.rollout_dir.glob("*.jsonl") if q.stem.isdigit())
        write_jsonl(self.out / "rollouts.jsonl",
                    [r for s in steps for r in read_jsonl(self.rollout_dir / f"{s}.jsonl")])
        return records


def summarize(records: list[dict[str, Any]], window: int = 5) -> dict[str, float | int | None]:
    """First and last values (averaged over a few steps) of the numbers a person looks at first."""
    if not records:
        return {"steps": 0}
    head, tail = records[:window], records[-window:]
    out: dict[str, float | int | None] = {"steps": int(records[-1]["step"])}
    for key in SUMMARY_KEYS:
        first, last = mean_of(head, key), mean_of(tail, key)
        out[f"{key}_first"] = None if first is None else round(first, 6)
        out[f"{key}_last"] = None if last is None else round(last, 6)
    return out
