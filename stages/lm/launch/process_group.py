"""Running a child job (torchrun, a server) in its own process group, answering stop signals for it.

Why: a stop signal (SIGUSR2 before the time limit, SIGTERM on preemption) must reach every rank, and the stage
must not report ``preempted`` while a worker still writes. So the child starts in a new session whose group is
registered with the stage (``add_child_process_group``: the lifecycle's handler forwards stop signals to it); the
stage waits for it to exit and escalates to SIGKILL if a stopped group lingers, and it never returns while a
process of the group is left.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from stages.lm.launch.torchrun import WORKER_SHUTDOWN_S

STOP_GRACE_S = WORKER_SHUTDOWN_S + 60.0  # the stage: time the torchrun group gets to exit, then SIGKILL
GROUP_EXIT_WAIT_S = 30.0


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def kill_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def reap_group(pgid: int, wait_s: float = GROUP_EXIT_WAIT_S) -> None:
    """Wait (boundedly) until no process of the group is left, then SIGKILL whatever is."""
    end = time.monotonic() + wait_s
    while group_alive(pgid) and time.monotonic() < end:
        time.sleep(0.2)
    if group_alive(pgid):
        kill_group(pgid, signal.SIGKILL)


def run_group(ctx: Any, cmd: list[str], env: dict[str, str], log_path: Path, cwd: Path,
              on_poll: Callable[[], None] | None = None, poll_s: float = 2.0,
              stop_file: Path | None = None) -> int | None:
    """Run ``cmd`` in a new process group, logging to ``log_path``; return its exit code.

    Returns None without starting anything when a stop was requested already. Without ``stop_file`` stop signals
    are forwarded to the group at once; with it (workers that read ``stages.lm.launch.stop_request``) a stop
    request writes the file, and the group is sent SIGTERM only if it is still running ``STOP_GRACE_S`` later.
    Either way it gets SIGKILL ``GROUP_EXIT_WAIT_S`` after that. Always waits (boundedly) until no process of the
    group is left.
    """
    if ctx.stop_requested:
        return None
    log_path.parent.mkdir(parents=True, exist_ok=True)
    if stop_file is not None:
        stop_file.unlink(missing_ok=True)  # a request of an earlier attempt is not this one's
    with log_path.open("ab") as log:
        log.write(("$ " + " ".join(cmd) + "\n").encode())
        log.flush()
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=str(cwd),
                                start_new_session=True)
        pgid = proc.pid
        if stop_file is None:
            ctx.add_child_process_group(pgid)
            if ctx.stop_requested:  # the signal arrived before the group was registered
                kill_group(pgid, signal.SIGTERM)
        stop_deadline: float | None = None
        signalled = stop_file is None
        while True:
            try:
                code = proc.wait(timeout=poll_s)
                break
            except subprocess.TimeoutExpired:
                pass
            if on_poll is not None:
                on_poll()
            if ctx.stop_requested:
                if stop_deadline is None and stop_file is not None:
                    stop_file.write_text("stop requested by the stage\n")
                stop_deadline = stop_deadline or time.monotonic() + STOP_GRACE_S
                if time.monotonic() > stop_deadline:
                    if not signalled:  # the workers did not stop by themselves: torchrun forwards SIGTERM
                        kill_group(pgid, signal.SIGTERM)
                        signalled, stop_deadline = True, time.monotonic() + GROUP_EXIT_WAIT_S
                    else:
                        kill_group(pgid, signal.SIGKILL)
        reap_group(pgid)
    return code


def log_tail(path: Path, lines: int = 25) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return ""
    return "\n".join(text[-lines:])
