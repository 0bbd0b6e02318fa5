"""The per-step metrics and rollout records of a GRPO run, named once for both engines.

Why: the analyzer and the tests read ``metrics.jsonl`` and ``rollouts.jsonl`` whatever engine trained the model, so
the native engine writes these names directly and verl's own logs (its ``file`` logger and rollout dumps) are
translated into them after each attempt. A verl key that a run did not log (KL without a reference model, say)
is simply absent from that step's record.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

# our name -> verl 0.9.1 metric key (the trainer's `file` logger writes {"step": n, "data": {key: value}})
VERL_KEYS = {
    "reward_mean": "critic/score/mean",
    "response_length": "response_length/mean",
    "entropy": "actor/entropy",
    "kl_ref": "actor/kl_loss",
    "clip_fraction": "actor/pg_clipfrac",
    "pg_loss": "actor/pg_loss",
    "grad_norm": "actor/grad_norm",
    "lr": "actor/lr",
    "throughput_tokens_per_s_per_device": "perf/throughput",
    "step_time_s": "timing_s/step",
}
VERL_EVICTED = "training/filter_groups/evicted_samples"


def correct(score: float, acc: Any = None) -> bool:
    """A response counts as correct when the grader says so (``acc``), else when it earned the full reward."""
    if acc is not None:
        return bool(acc)
    return float(score) >= 1.0


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


def verl_step_record(step: int, data: dict[str, Any], group_size: int, rollouts: list[dict[str, Any]]) -> dict:
    """One step of verl's log in our names; accuracy comes from that step's rollout dump when there is one."""
    record: dict[str, Any] = {"step": step}
    for ours, theirs in VERL_KEYS.items():
        if theirs in data:
            record[ours] = data[theirs]
    if rollouts:
        record["accuracy"] = sum(correct(r.get("score", 0.0)) for r in rollouts) / len(rollouts)
    elif "reward_mean" in record:
        record["accuracy"] = record["reward_mean"]  # binary rewards: the mean reward is the share correct
    evicted = float(data.get(VERL_EVICTED, 0.0))
    kept = float(len(rollouts)) if rollouts else None
    if kept:
        record["dropped_groups"] = evicted / group_size
        record["dropped_group_share"] = evicted / (evicted + kept)
    return record


def verl_metrics(log_files: list[Path], rollout_dir: Path, group_size: int) -> list[dict[str, Any]]:
    """Merge verl's per-attempt logs (later attempts win per step) into our records, ordered by step."""
    by_step: dict[int, dict[str, Any]] = {}
    for path in log_files:
        for entry in read_jsonl(path):
            if "step" in entry and isinstance(entry.get("data"), dict):
                by_step[int(entry["step"])] = entry["data"]
    out = []
    for step in sorted(by_step):
        dump = read_jsonl(rollout_dir / f"{step}.jsonl")
        out.append(verl_step_record(step, by_step[step], group_size, dump))
    return out


def verl_rollouts(rollout_dir: Path, every: int) -> list[dict[str, Any]]:
    """verl's per-step rollout dumps, every ``every``-th step, as our rollout records."""
    out: list[dict[str, Any]] = []
    if not rollout_dir.is_dir():
        return out
    steps = sorted(int(p.stem) for p in rollout_dir.glob("*.jsonl") if p.stem.isdigit())
    for step in steps:
        if step % every and step != 1:
            continue
        for r in read_jsonl(rollout_dir / f"{step}.jsonl"):
            out.append(
                {
                    "step": step,
                    "uid": r.get("uid"),
                    "prompt": r.get("input"),
                    "response": r.get("output"),
                    "ground_truth": r.get("gts"),
                    "reward": r.get("score"),
                }
            )
    return out


def summarize(records: list[dict[str, Any]], window: int = 5) -> dict[str, float | int | None]:
    """The numbers a person wants at a glance: first and last reward (averaged over a few steps), lengths."""
    if not records:
        return {"steps": 0}

    def mean(key: str, rows: list[dict[str, Any]]) -> float | None:
        vals = [float(r[key]) for r in rows if r.get(key) is not None]
        return round(sum(vals) / len(vals), 6) if vals else None

    head, tail = records[:window], records[-window:]
    return {
        "steps": int(records[-1]["step"]),
        "reward_first": mean("reward_mean", head),
        "reward_last": mean("reward_mean", tail),
        "accuracy_last": mean("accuracy", tail),
        "response_length_last": mean("response_length", tail),
        "dropped_group_share_mean": mean("dropped_group_share", records),
    }


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
