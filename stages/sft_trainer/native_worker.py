"""What torchrun runs on every rank for native SFT on several GPUs: ``native_train.train`` on a job file.

Why it handles signals itself: the stage forwards SIGUSR2/SIGTERM to the whole torchrun group; each rank notes the
request and the engine checkpoints at the next step boundary (all ranks agree through an all-reduce) before the
worker exits, so the stage can name that checkpoint when it reports ``preempted``. Rank 0 writes the outcome to
``<job file>.result.json``. Usage: ``torchrun ... -m stages.sft_trainer.native_worker JOB.json``.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

from stages.sft_trainer.native_train import NativeJob, train


def main(argv: list[str] | None = None) -> int:
    job_path = Path((argv if argv is not None else sys.argv[1:])[0])
    job = NativeJob.from_json(job_path.read_text())
    stop = {"requested": False}

    def note(signum: int, frame: object) -> None:
        stop["requested"] = True

    for sig in (signal.SIGUSR2, signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, note)
    result = train(job, should_stop=lambda step: stop["requested"])
    if int(os.environ.get("RANK", "0")) == 0:
        job_path.with_name(job_path.name + ".result.json").write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
