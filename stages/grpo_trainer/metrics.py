"""The per-step metrics and rollout records of a GRPO run, named once for both engines.

Why: the analyzer and the tests read ``metrics.jsonl`` and ``rollouts.jsonl`` whatever engine trained the model, so
the native engine writes these names directly and verl's own logs (its ``file`` logger and rollout dumps) are
translated into them after each attempt. A verl key that a run did not log (KL without a reference model, say)
is simply absent from that step's record.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from stages.lm.engine.step_log import StepLog, read_jsonl, wandb_run_id, write_jsonl  # noqa: F401

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

    window = max(1, min(window, len(records) // 2))  # a short run: first and last do not overlap
    head, tail = records[:window], records[-window:]
    return {
        "steps": int(records[-1]["step"]),
        "reward_first": mean("reward_mean", head),
        "reward_last": mean("reward_mean", tail),
        "accuracy_last": mean("accuracy", tail),
        "response_length_last": mean("response_length", tail),
        "dropped_group_share_mean": mean("dropped_group_share", records),
    }
