"""What torchrun runs on every rank for native SFT on several GPUs: ``native_train.train`` on a job file.

Why it watches for a stop itself: on SIGUSR2/SIGTERM the stage writes ``<job file>.stop`` (``stop_request``: no
torchrun timeout can cut the checkpoint short); each rank notes it, or a signal that reaches it directly, and the
engine checkpoints at the next step boundary (all ranks agree through an all-reduce) before the worker exits, so
the stage can name that checkpoint when it reports ``preempted``. Rank 0 writes the outcome to
``<job file>.result.json``. Usage: ``torchrun ... -m stages.sft_trainer.native_worker JOB.json``.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from stages.lm.launch.stop_request import WorkerStop, stop_file_for
from stages.sft_trainer.native_train import NativeJob, train


def main(argv: list[str] | None = None) -> int:
    job_path = Path((argv if argv is not None else sys.argv[1:])[0])
    job = NativeJob.from_json(job_path.read_text())
    stop = WorkerStop(stop_file_for(job_path)).install()
    result = train(job, should_stop=stop)
    if int(os.environ.get("RANK", "0")) == 0:
        job_path.with_name(job_path.name + ".result.json").write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
