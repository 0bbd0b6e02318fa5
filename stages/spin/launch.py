"""Running an iteration's reference, training and export phases under torchrun, from the stage's process.

Why the stage stays outside torchrun: generation between two training phases needs the GPUs free for a vLLM
server, and a process that exits is the only sure way to give back all GPU memory. So each iteration (each attempt
at one) starts one torchrun job over every GPU of every node (``stages.lm.launch``: srun and a c10d rendezvous on
several nodes) running ``stages.spin.worker``, and waits for it, passing a stop request on through a file. The workers
write the state file, the reference log-probs and the checkpoints themselves; the stage reads the state back when
torchrun is gone, and rank 0's result file says whether the iteration finished or stopped (and where it resumes).
On several nodes every rank reads and writes the run folder, so ``output_dir`` (and the inputs) must be on a
filesystem all nodes see (scratch), as the engine's checkpoints require anyway.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from stages.lm.launch.process_group import log_tail, run_group
from stages.lm.launch.stop_request import stop_file_for
from stages.lm.launch.torchrun import World, child_environment, torchrun_command
from stages.spin.session import Session

WORKER_MODULE = "stages.spin.worker"


def run_under_torchrun(ctx: Any, session: Session, world: World, iteration: int) -> dict[str, Any]:
    """Run the worker on ``world``; returns its result (``status`` completed | preempted, ``checkpoint``)."""
    from stages.lm.engine.checkpoint import latest_checkpoint

    logs = ctx.local_output_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    name = f"spin-iter{iteration}-attempt{ctx.manifest.status.attempt}"
    job_file, log_path, progress = logs / f"{name}.json", logs / f"{name}.log", logs / f"{name}.progress.json"
    job_file.write_text(replace(session.job, progress_file=str(progress)).to_json())
    result_file = job_file.with_name(job_file.name + ".result.json")
    result_file.unlink(missing_ok=True)

    def forward_progress() -> None:
        try:
            seen = json.loads(progress.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return
        ctx.report(seen.get("progress"), seen.get("note"))

    cmd = torchrun_command(world, WORKER_MODULE, [str(job_file)])
    code = run_group(ctx, cmd, child_environment({}), log_path, cwd=ctx.local_output_dir, on_poll=forward_progress,
                     stop_file=stop_file_for(job_file))
    if result_file.exists():
        return json.loads(result_file.read_text(encoding="utf-8"))
    if ctx.stop_requested:
        latest = latest_checkpoint(session.checkpoint_dir / f"iter-{iteration}")
        return {"status": "preempted", "checkpoint": str(latest or session.checkpoint_dir / "spin_state.json")}
    raise RuntimeError(f"spin's torchrun workers exited with code {code} and no result; log {log_path}:\n"
                       f"{log_tail(log_path)}")
