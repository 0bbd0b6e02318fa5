"""Named points of a SPIN run where a test can deliver a stop signal deterministically.

Why: resume must be shown exact after a stop in every phase (mid-generation, mid-scoring, mid-training, between
iterations), and a signal sent after a sleep lands wherever the machine's load puts it. The run calls
``reached("<phase>:<iteration>:<n>")`` after each unit of work; when the environment variable
``FLLM_SPIN_SIGNAL_AT`` lists that point (comma-separated), the process sends itself SIGTERM, which goes through the
real handler of the lifecycle exactly as Slurm's signal would. Nothing else reads the variable, and unset (every
real run) it does nothing.

Points: ``generate:<t>:<chunk>``, ``score:<t>:<chunk>``, ``train:<t>:<step>`` (after that optimizer step) and
``iteration:<t>`` (after iteration t's model is exported and the state moved on).
"""

from __future__ import annotations

import os
import signal

ENV = "FLLM_SPIN_SIGNAL_AT"


def reached(point: str) -> None:
    wanted = os.environ.get(ENV)
    if wanted and point in {p.strip() for p in wanted.split(",")}:
        signal.raise_signal(signal.SIGTERM)
