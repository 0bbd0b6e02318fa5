"""The sft-trainer run: choose the rows, train with the manifest's engine, write the model, metrics and summary.

Why one entry for both engines: GT-SFT, SF-SFT and CF-SFT differ only in their ``data`` input, and a study must be
able to switch between verl (the scale engine) and the native engine without rewriting manifests. So the data
checks, the split, the step arithmetic and the outputs are shared here; only the training differs.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from stages.core import RunContext, StageResult
from stages.sft_trainer.prepare import Prepared, analyse, detected_world, write_split

OUTPUTS = {"model": "model", "metrics": "metrics.jsonl", "checkpoints": "checkpoints"}
# what the trained sequences hold around the answer, per thinking mode (stages.lm.chat; see verl_dataset)
THINK_TAGS = {False: "empty <think></think> block ends the prompt (not trained); trained: answer + <|im_end|>",
              True: "prompt ends at the assistant header; trained: <think>reasoning</think> (empty when the row has "
                    "none) + answer + <|im_end|>"}


def _wall_time(logs: Path, attempt: int, seconds: float) -> float:
    """Record this attempt's seconds and return the total over every attempt of the run."""
    path = logs / "wall_time.json"
    try:
        spent = json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        spent = {}
    spent[str(attempt)] = round(seconds, 3)
    logs.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(spent, indent=1) + "\n")
    return float(sum(spent.values()))


def _data_summary(prepared: Prepared) -> dict[str, Any]:
    sel = prepared.selection
    return {
        "train_rows": len(sel.train),
        "val_rows": len(sel.val),
        "dropped_rows": sel.dropped,
        "truncated_rows": sel.truncated,
        "steps_per_epoch": prepared.steps_per_epoch,
        "planned_steps": prepared.total_steps,
    }


def run(ctx: RunContext) -> StageResult:
    started = time.monotonic()
    out = ctx.local_output_dir
    logs = out / "logs"
    try:
        prepared = analyse(ctx.spec, ctx.inputs, detected_world(ctx.spec.resources))
        write_split(prepared, out / "data")
        ctx.log.info("sft-trainer (%s): %d train / %d val rows, %d step(s) of %d on %d rank(s)", ctx.engine,
                     len(prepared.selection.train), len(prepared.selection.val), prepared.total_steps,
                     ctx.params.global_batch_size, prepared.world.size)
        if ctx.engine == "verl":
            from stages.sft_trainer.verl_engine import run_verl

            trained = run_verl(ctx, prepared)
        else:
            from stages.sft_trainer.native_engine import run_native

            trained = run_native(ctx, prepared)
    finally:
        wall = _wall_time(logs, ctx.manifest.status.attempt, time.monotonic() - started)
    summary = {"engine": ctx.engine, "thinking": ctx.runtime.thinking, "think_tags": THINK_TAGS[ctx.runtime.thinking],
               **trained, **_data_summary(prepared),
               "wall_time_s": round(wall, 1)}
    return StageResult(outputs=dict(OUTPUTS), summary=summary)
