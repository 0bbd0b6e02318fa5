"""``metrics.jsonl`` in one shape for both engines, and the summary a person reads first.

Why one shape: the analyzer and the tests read ``step``, ``loss``, ``lr``, ``grad_norm``, ``tokens`` and, at
validation steps, ``val_loss``, whichever engine trained. The native engine writes that shape itself; verl's JSONL
file logger writes ``{"step", "data": {"train/loss", ...}}`` records, one file per attempt (it truncates its file
when it starts, so every attempt gets its own), which are folded here: per step, a later attempt wins (a resumed
run repeats the steps after its checkpoint) and verl's other keys are kept beside the common ones. One difference
stays: verl logs ``lr`` after its scheduler stepped (the rate of the next step), the native engine the rate it used.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

VERL_KEYS = {"train/loss": "loss", "train/lr": "lr", "train/grad_norm": "grad_norm",
             "train/global_tokens": "tokens", "val/loss": "val_loss"}


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    out = []
    try:
        with path.open(encoding="utf-8") as fh:
            for line in fh:
                line = line.strip()
                if line:
                    try:
                        out.append(json.loads(line))
                    except json.JSONDecodeError:
                        continue  # a line cut by a kill: the next attempt logs that step again
    except FileNotFoundError:
        return []
    return out


def verl_records(attempt_files: list[Path]) -> list[dict[str, Any]]:
    """verl's per-attempt logs folded into one record per step, in the common shape."""
    by_step: dict[int, dict[str, Any]] = {}
    for attempt, path in enumerate(attempt_files, 1):
        seen: set[int] = set()
        for rec in read_jsonl(path):
            step = int(rec.get("step", 0))
            if step not in seen:  # a new attempt replaces what an earlier one logged for this step
                by_step[step] = {"step": step}
                seen.add(step)
            row = by_step[step]
            row["attempt"] = attempt
            for key, value in (rec.get("data") or {}).items():
                row[VERL_KEYS.get(key, key)] = value
    return [by_step[s] for s in sorted(by_step)]


def write_jsonl(path: Path, records: list[dict[str, Any]]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        for rec in records:
            fh.write(json.dumps(rec, default=float) + "\n")
    tmp.replace(path)


def last_step(path: Path) -> int:
    """The newest step in a metrics file being written (for progress reports); 0 when there is none yet."""
    records = read_jsonl(path)
    return max((int(r.get("step", 0)) for r in records), default=0)


def one_per_step(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One record per step, later records winning (a resumed native run appends the steps it repeats)."""
    by_step: dict[int, dict[str, Any]] = {}
    for rec in records:
        step = int(rec.get("step", 0))
        if "loss" in rec:  # a new training record replaces the step; a val-only record adds to it
            by_step[step] = dict(rec)
        else:
            by_step.setdefault(step, {"step": step}).update(rec)
    return [by_step[s] for s in sorted(by_step)]


def summarize(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Final train/val loss, first train loss, tokens seen and steps, from the common-shape records."""
    records = one_per_step(records)
    train = [r for r in records if r.get("loss") is not None]
    val = [r for r in records if r.get("val_loss") is not None]
    return {
        "train_steps": max((int(r["step"]) for r in records), default=0),
        "first_train_loss": float(train[0]["loss"]) if train else None,
        "final_train_loss": float(train[-1]["loss"]) if train else None,
        "final_val_loss": float(val[-1]["val_loss"]) if val else None,
        "tokens_seen": int(sum(float(r.get("tokens") or 0) for r in train)),
    }
