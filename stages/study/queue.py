"""Which Slurm jobs still exist: one ``squeue`` call for all of the user's jobs, with a timeout.

Status and resubmission read run states from manifests; the queue is asked only whether a job that a record or a
submission names is still pending or running (a ``running`` record whose job is gone is stale, not done). One call
per command, never one per job, and never ``sacct`` (slow or absent without slurmdbd).
"""

from __future__ import annotations

import getpass
import shutil
import subprocess


def queue_states(timeout: float = 30.0) -> dict[str, str] | None:
    """job id (plain and ``array_task`` forms) -> ``STATE`` or ``STATE (reason)``; None when squeue cannot answer."""
    if shutil.which("squeue") is None:
        return None
    try:
        r = subprocess.run(
            ["squeue", "-h", "-r", "-u", getpass.getuser(), "-o", "%A|%i|%T|%r"],
            capture_output=True, text=True, timeout=timeout,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if r.returncode != 0:
        return None
    out: dict[str, str] = {}
    for line in r.stdout.splitlines():
        parts = line.strip().split("|")
        if len(parts) != 4:
            continue
        own, shown, state, reason = parts
        label = state if reason in ("None", "") else f"{state} ({reason})"
        out[own] = label
        out[shown] = label
    return out


def job_state(queue: dict[str, str] | None, job: str | None) -> str | None:
    """The queue state of a job, ``"gone"`` when the queue does not list it, None when it cannot be known."""
    if queue is None or not job:
        return None
    return queue.get(str(job), "gone")
