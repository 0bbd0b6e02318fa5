"""A stop request that reaches every torchrun worker through a file, so that torchrun's own timeout never cuts a
checkpoint short.

Why a file: torchrun forwards the signals it handles to its workers and kills them after its shutdown timeout.
That timeout is a flag (``--shutdown-timeout``) only from torch 2.12; the images pin torch 2.11, whose torchrun
kills the workers 30 s after the signal, less than a sharded 8B-14B checkpoint takes to write to scratch. So a stage
that runs the native engine's workers does not signal torchrun at first: it writes ``<job file>.stop`` beside the
job file (which every rank reads, so it is on a filesystem all nodes see), every rank checks for it at its stop
points, the ranks agree, checkpoint and exit, and torchrun ends by itself. Only if they are still running after
the grace period is torchrun signalled (``process_group.run_group``). A signal that reaches a worker directly (Slurm
without ``B:``) still counts.
"""

from __future__ import annotations

import signal
from pathlib import Path
from types import FrameType

from stages.core.signals import STOP_SIGNALS  # the lifecycle's own: a worker answers the same signals as a stage


def stop_file_for(job_file: Path) -> Path:
    """Where the stage asks the workers of ``job_file`` to stop."""
    return job_file.with_name(job_file.name + ".stop")


class WorkerStop:
    """In a worker: true once a stop signal arrived or the stop file exists (checked at each call, a stat)."""

    def __init__(self, stop_file: Path | None) -> None:
        self.stop_file = stop_file
        self.requested = False

    def install(self) -> WorkerStop:
        for sig in STOP_SIGNALS:
            signal.signal(sig, self._note)
        return self

    def _note(self, signum: int, frame: FrameType | None) -> None:
        self.requested = True

    def __call__(self, *_: object) -> bool:
        if not self.requested and self.stop_file is not None and self.stop_file.exists():
            self.requested = True
        return self.requested
