"""Starting a torchrun job in its own process group and answering stop signals for it.

Why: a stop signal (SIGUSR2 before the time limit, SIGTERM on preemption) must reach every rank, and the stage
must not report ``preempted`` while a worker still writes. So torchrun starts in a new session whose group is
registered with the stage (``add_child_process_group``: the lifecycle's handler forwards stop signals to it); the
stage waits for torchrun to exit and escalates to SIGKILL if a stopped group lingers. One node runs ``torchrun
--standalone``; several nodes run one torchrun per node through ``srun`` with a c10d rendezvous on this host (the
batch host of the Slurm allocation).

torchrun starts each worker in a session of its own, so the forwarded signal reaches torchrun alone; it passes
the signals it handles on to its workers, waits ``--shutdown-timeout`` seconds, then kills them. SIGUSR2 is added
to those (``--signals-to-handle``): by default it ends torchrun at once and leaves its workers running, orphaned
(seen with torch 2.13). The native engine's workers checkpoint on the signal within that timeout; verl's have no
handler and stop at once, and the next attempt resumes from the last checkpoint verl saved.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from stages.sft_trainer.plan import World

HANDLED_SIGNALS = "SIGTERM,SIGINT,SIGHUP,SIGQUIT,SIGUSR2"  # torchrun forwards these to its workers
WORKER_SHUTDOWN_S = 180  # torchrun: time its workers get to checkpoint after a stop signal, then SIGKILL
STOP_GRACE_S = WORKER_SHUTDOWN_S + 60.0  # the stage: time the torchrun group gets to exit, then SIGKILL
GROUP_EXIT_WAIT_S = 30.0
RDZV_PORT = 29500


def torchrun_command(world: World, module: str, args: list[str]) -> list[str]:
    """The command that starts ``python -m module args`` on every rank of ``world``."""
    run = [sys.executable, "-m", "torch.distributed.run", f"--signals-to-handle={HANDLED_SIGNALS}",
           f"--shutdown-timeout={WORKER_SHUTDOWN_S}"]
    if world.nodes == 1:
        return [*run, "--standalone", "--nnodes=1", f"--nproc_per_node={world.ranks_per_node}", "-m", module, *args]
    job_id = os.environ.get("SLURM_JOB_ID", "fllm")
    srun = ["srun", f"--nodes={world.nodes}", f"--ntasks={world.nodes}", "--ntasks-per-node=1",
            "--kill-on-bad-exit=1"]
    rdzv = [f"--nnodes={world.nodes}", f"--nproc_per_node={world.ranks_per_node}", "--rdzv_backend=c10d",
            f"--rdzv_endpoint={socket.getfqdn()}:{RDZV_PORT}", f"--rdzv_id={job_id}"]
    return [*srun, *run, *rdzv, "-m", module, *args]


def child_environment(extra: dict[str, str]) -> dict[str, str]:
    """This process's environment plus ``extra``, with the ``stages`` package importable in every worker."""
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    env.update(extra)
    return env


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _kill_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def run_group(ctx: Any, cmd: list[str], env: dict[str, str], log_path: Path, cwd: Path,
              on_poll: Callable[[], None] | None = None, poll_s: float = 2.0) -> int | None:
    """Run ``cmd`` in a new process group, logging to ``log_path``; return its exit code.

    Returns None without starting anything when a stop was requested already. After a stop request the group
    gets ``STOP_GRACE_S`` to exit before SIGKILL. Always waits (boundedly) until no process of the group is left.
    """
    if ctx.stop_requested:
        return None
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        log.write(("$ " + " ".join(cmd) + "\n").encode())
        log.flush()
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=str(cwd),
                                start_new_session=True)
        pgid = proc.pid
        ctx.add_child_process_group(pgid)
        if ctx.stop_requested:  # the signal arrived before the group was registered
            _kill_group(pgid, signal.SIGTERM)
        stop_deadline: float | None = None
        while True:
            try:
                code = proc.wait(timeout=poll_s)
                break
            except subprocess.TimeoutExpired:
                pass
            if on_poll is not None:
                on_poll()
            if ctx.stop_requested:
                stop_deadline = stop_deadline or time.monotonic() + STOP_GRACE_S
                if time.monotonic() > stop_deadline:
                    _kill_group(pgid, signal.SIGKILL)
        end = time.monotonic() + GROUP_EXIT_WAIT_S
        while _group_alive(pgid) and time.monotonic() < end:
            time.sleep(0.2)
        if _group_alive(pgid):
            _kill_group(pgid, signal.SIGKILL)
    return code


def log_tail(path: Path, lines: int = 25) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return ""
    return "\n".join(text[-lines:])
