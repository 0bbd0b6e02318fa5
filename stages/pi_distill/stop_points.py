"""Named points of a π-Distill run where a test can deliver a stop signal deterministically.

Why: resume must be shown exact after a stop, and a signal sent after a sleep lands wherever the machine's load
puts it. The run calls ``reached("<point>")``; when the environment variable ``FLLM_PI_DISTILL_SIGNAL_AT`` lists
that point (comma-separated), the process sends itself SIGTERM, which goes through the lifecycle's real handler
exactly as Slurm's signal would. Nothing else reads the variable, and unset (every real run) it does nothing.

Points: ``step:<k>`` after rollout step k (1-based) is logged, before its periodic checkpoint decision;
``update:<k>`` after step k's samples are generated, graded and scored, before its first optimizer step (the run
rewinds to the start of step k and checkpoints there).
"""

from __future__ import annotations

import os
import signal

ENV = "FLLM_PI_DISTILL_SIGNAL_AT"


def reached(point: str) -> None:
    wanted = os.environ.get(ENV)
    if wanted and point in {p.strip() for p in wanted.split(",")}:
        signal.raise_signal(signal.SIGTERM)
