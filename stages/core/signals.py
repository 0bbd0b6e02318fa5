"""Stop signals: Slurm's pre-timeout signal (SIGUSR2 by default; NCCL may catch SIGUSR1), preemption's SIGTERM,
and Ctrl-C on a workstation.

The handler only records the request (and forwards it to registered child processes such as a torchrun launcher);
the stage polls ``ctx.stop_requested`` between steps, saves a checkpoint and raises ``Preempted``. Doing the work in
the stage, not in the handler, keeps checkpoints consistent: a signal never lands in the middle of an optimizer step.
A second signal while the first is being honoured stops at once.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from types import FrameType

from stages.core.errors import Preempted

STOP_SIGNALS = (signal.SIGUSR2, signal.SIGTERM, signal.SIGINT)


class StopFlag:
    def __init__(self) -> None:
        self.signal_name: str | None = None
        self.children: list[int] = []  # process-group ids to forward signals to
        self._previous: dict[int, Callable | int | None] = {}

    @property
    def requested(self) -> bool:
        return self.signal_name is not None

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        first = self.signal_name is None
        self.signal_name = signal.Signals(signum).name
        for pgid in list(self.children):
            try:
                os.killpg(pgid, signum)
            except (ProcessLookupError, PermissionError):
                pass
        if not first:
            raise Preempted(signal_name=self.signal_name)

    def install(self) -> None:
        for sig in STOP_SIGNALS:
            self._previous[sig] = signal.getsignal(sig)
            signal.signal(sig, self._handle)

    def restore(self) -> None:
        for sig, prev in self._previous.items():
            signal.signal(sig, prev if prev is not None else signal.SIG_DFL)
        self._previous.clear()
