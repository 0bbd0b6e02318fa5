"""The run's record: ``metrics.jsonl`` and the manifest summary, assembled from what each iteration left behind.

Why assembled at the end: each iteration's trainer logs its optimizer steps to its own file (``work/iter-<t>/
metrics.jsonl``; a resumed attempt re-logs the steps after its checkpoint, and the later record of a step wins),
and the generation and reference facts live in the state file; joining them once gives one clean, ordered file
however often the run was interrupted.

``metrics.jsonl`` holds, per iteration, one ``generate`` record (samples, how many the grader found correct and
their share, pairs kept and dropped, the start model's chosen-minus-rejected log-prob gap over the training pairs)
and one ``train`` record per optimizer step: loss, ``reward_margin`` (beta times the chosen-minus-rejected
log-ratio margin against the reference), ``chosen_reward`` / ``rejected_reward``, ``reward_accuracy``, the
policy's summed log-probs ``logp_chosen`` / ``logp_rejected`` and their gap ``logp_gap`` (means over pairs), plus
lr, grad norm and throughput.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from stages.spin.state import SpinState

STEP_KEYS = ("loss", "reward_margin", "chosen_reward", "rejected_reward", "reward_accuracy", "logp_chosen",
             "logp_rejected", "logp_gap", "lr", "grad_norm", "tokens", "units", "step_time_s", "tokens_per_s",
             "max_memory_allocated_gb")  # the last only on a GPU


def iteration_records(out: Path, state: SpinState, iterations: int) -> list[dict[str, Any]]:
    from stages.lm.engine.metrics import read_metrics

    records: list[dict[str, Any]] = []
    global_step = 0
    for t in range(iterations):
        stats = state.stats.get(str(t), {})
        records.append({"iteration": t, "phase": "generate", **stats.get("generation", {}),
                        **stats.get("reference", {})})
        log = out / "work" / f"iter-{t}" / "metrics.jsonl"
        for rec in read_metrics(log) if log.exists() else []:
            global_step += 1
            records.append({"iteration": t, "phase": "train", "step": rec["step"], "global_step": global_step,
                            **{k: rec[k] for k in STEP_KEYS if k in rec}})
    return records


def write_metrics(path: Path, records: list[dict[str, Any]]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.writelines(json.dumps(r, default=float) + "\n" for r in records)
    os.replace(tmp, path)


def summarize(records: list[dict[str, Any]], state: SpinState, facts: dict[str, Any]) -> dict[str, Any]:
    """The handful of numbers a person wants at a glance (flat: the manifest's summary holds scalars)."""
    gen = [r for r in records if r["phase"] == "generate"]
    steps = [r for r in records if r["phase"] == "train"]
    summary: dict[str, Any] = dict(facts)
    summary.update(
        samples_total=sum(r.get("samples", 0) for r in gen),
        correct_samples_total=sum(r.get("correct_samples", 0) for r in gen),
        pairs_dropped_correct_total=sum(r.get("pairs_dropped_correct", 0) for r in gen),
        train_steps_total=len(steps),
    )
    for r in gen:
        t = r["iteration"]
        summary[f"share_correct_iter{t}"] = r.get("share_correct")
        summary[f"pairs_kept_iter{t}"] = r.get("pairs_kept")
    if steps:
        last = steps[-1]
        for key in ("loss", "reward_margin", "reward_accuracy", "logp_gap"):
            if key in last:
                summary[f"final_{key}"] = last[key]
    return summary
