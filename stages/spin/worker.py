"""What torchrun runs on every rank for SPIN on several GPUs (or gloo ranks on a CPU): one iteration's reference
log-probs, training and export (``iteration.score_train_export``) on a job file the stage wrote.

Why it watches for a stop itself: on SIGUSR2/SIGTERM the stage writes ``<job file>.stop`` (``stop_request``: no
torchrun timeout can cut the checkpoint short); each rank notes it, or a signal that reaches it directly, the ranks
agree on it at the next chunk or optimizer step, checkpoint and exit, so the stage can report ``preempted`` once
torchrun is gone. Each rank rebuilds the prompts' token ids from
the prompts file and the input model's tokenizer (the same function the stage used, so the same ids). Rank 0 writes
the outcome to ``<job file>.result.json``: ``completed`` or ``preempted`` with what the next attempt resumes from.
Usage: ``torchrun ... -m stages.spin.worker JOB.json``.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from stages.lm.launch.stop_request import WorkerStop, stop_file_for


def main(argv: list[str] | None = None) -> int:
    import torch.distributed as dist

    from stages.lm.loading import load_tokenizer
    from stages.spin.iteration import score_train_export
    from stages.spin.pairs import encode_prompts
    from stages.spin.prompts import read_prompts
    from stages.spin.session import Job, Session, Stopped, progress_writer
    from stages.spin.state import SpinState

    job_path = Path((argv if argv is not None else sys.argv[1:])[0])
    job = Job.from_json(job_path.read_text())
    stop = WorkerStop(stop_file_for(job_path)).install()
    main_rank = int(os.environ.get("RANK", "0")) == 0
    report = progress_writer(Path(job.progress_file)) if main_rank and job.progress_file else None
    session = Session(job, requested=stop, **({"report": report} if report else {}))
    state_path = session.checkpoint_dir / "spin_state.json"
    state = SpinState.load(state_path)
    if state is None or state.phase not in ("score", "train"):
        raise RuntimeError(f"{state_path}: the worker runs the score and train phases, the state is "
                           f"{state.phase if state else 'missing'}")
    tokenizer = load_tokenizer(job.model_dir)
    rows = read_prompts(job.prompts, session.params.chosen_source)
    encoded, _ = encode_prompts(rows, tokenizer, job.thinking, session.params.max_prompt_length,
                                session.params.max_length)
    result: dict[str, object] = {"status": "completed", "checkpoint": None}
    try:
        score_train_export(session, state, state_path, {e.row.position: e for e in encoded}, tokenizer)
    except Stopped as stopped:
        result = {"status": "preempted", "checkpoint": stopped.checkpoint}
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
    if main_rank:
        job_path.with_name(job_path.name + ".result.json").write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
