"""The per-step log the native RL-style trainers share (grpo-trainer, pi-distill): ``metrics.jsonl`` (and wandb
when the manifest asks), rollout samples per step (``native/rollouts/<step>.jsonl``, assembled into
``rollouts.jsonl``), and a wandb run id that stays the same across requeued attempts.

Why here: stages never import each other, and both trainers write the same files the same way on this engine.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:  # a line cut by a kill mid-write: the step is logged again on resume
                continue
    return out


def write_jsonl(path: Path, records: list[dict[str, Any]]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        for record in records:
            fh.write(json.dumps(record, default=float) + "\n")
    tmp.replace(path)


def wandb_run_id(run_id: str, spec_hash: str | None) -> str:
    """Stable across attempts, so a requeued job logs to the same wandb run (verl reference §4)."""
    digest = (spec_hash or "").split(":")[-1][:8]
    return re.sub(r"[^A-Za-z0-9_-]", "-", f"{run_id}-{digest}".strip("-"))[:120]


class StepLog:
    """The native engine's per-rollout-step records (``metrics.jsonl``, wandb when the manifest asks) and rollout
    samples (``native/rollouts/<step>.jsonl``, assembled into ``rollouts.jsonl`` at the end). A resumed run
    appends; ``finish`` keeps the latest record of every step."""

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
        write_jsonl(self.out / "rollouts.jsonl", [r for s in steps for r in read_jsonl(self.rollout_dir / f"{s}.jsonl")])
        return records
