"""What the reference, training and export phases of an iteration need from the run, the same in the stage's own
process and on every rank under torchrun.

Why not the lifecycle's ``RunContext``: on several GPUs these phases run in torchrun workers, which have no
manifest, no lock and no signal handler of the lifecycle. A ``Session`` carries the settings (the validated params,
the folders, seed, thinking, tracking) and three hooks: ``requested`` (has this process been asked to stop),
``report`` (progress for the manifest) and ``note_checkpoint``. In the stage they are the context's own; in a
worker the stop flag is set by the worker's signal handler and progress goes to a small file the stage polls.

A stop must be agreed by every rank before any of them acts on it (a signal reaches the ranks at different
moments): ``agreed_stop`` takes the maximum of the flags over the ranks, and a phase that stops raises ``Stopped``
with the checkpoint (or state file) the next attempt resumes from.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from stages.spin.params import SPINParams


class Stopped(Exception):
    """A phase stopped on request; ``checkpoint`` is what the next attempt resumes from."""

    def __init__(self, checkpoint: str | None) -> None:
        super().__init__(checkpoint)
        self.checkpoint = checkpoint


@dataclass
class Job:
    """The JSON-able part of a session: what a torchrun worker is given."""

    params: dict[str, Any]
    output_dir: str
    checkpoint_dir: str
    model_dir: str  # the input model (its tokenizer serves every iteration)
    prompts: str
    run_id: str
    seed: int
    thinking: bool
    wandb_project: str | None
    wandb_mode: str
    checkpoint_every_s: float
    progress_file: str | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1)

    @classmethod
    def from_json(cls, text: str) -> Job:
        return cls(**json.loads(text))


@dataclass
class Session:
    job: Job
    requested: Callable[[], bool] = field(default=lambda: False)
    report: Callable[..., None] = field(default=lambda progress=None, note=None, force=False: None)
    note_checkpoint: Callable[[str], None] = field(default=lambda path: None)

    def __post_init__(self) -> None:
        self.params = SPINParams.model_validate(self.job.params)
        self.out = Path(self.job.output_dir)
        self.checkpoint_dir = Path(self.job.checkpoint_dir)

    @classmethod
    def from_context(cls, ctx: Any) -> Session:
        tracking = ctx.runtime.tracking
        job = Job(params=ctx.params.model_dump(mode="json"), output_dir=str(ctx.local_output_dir),
                  checkpoint_dir=str(ctx.checkpoint_dir), model_dir=str(ctx.inputs["model"].path),
                  prompts=str(ctx.inputs["prompts"].path), run_id=ctx.manifest.run_id, seed=ctx.runtime.seed,
                  thinking=ctx.runtime.thinking, wandb_project=tracking.project if tracking.wandb else None,
                  wandb_mode=tracking.mode, checkpoint_every_s=ctx.runtime.checkpoint_every_minutes * 60)
        return cls(job, requested=lambda: ctx.stop_requested, report=ctx.report, note_checkpoint=ctx.note_checkpoint)

    def agreed_stop(self, info: Any) -> bool:
        """Whether any rank was asked to stop (every rank must call this at the same point)."""
        from stages.lm.engine.distributed import all_reduce

        return all_reduce(1.0 if self.requested() else 0.0, info, op="max") > 0


def progress_writer(path: Path) -> Callable[..., None]:
    """A ``report`` hook for rank 0 of a worker: the latest progress and note, written atomically to ``path``."""
    last: dict[str, Any] = {"progress": None, "note": None}

    def report(progress: float | None = None, note: str | None = None, force: bool = False) -> None:
        if progress is not None:
            last["progress"] = progress
        if note is not None:
            last["note"] = note
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(json.dumps(last), encoding="utf-8")
        os.replace(tmp, path)

    return report
