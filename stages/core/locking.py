"""One run per output folder: a lock file created exclusively, naming its holder.

On a local or shared POSIX file system the lock is an ``O_EXCL`` create, which is atomic on the local disk and on
the Lustre/GPFS scratch of the clusters. A lock left by a dead process on this same host is stale and is taken
over; a lock held by another host is respected (we cannot see its processes) until ``--force``.
"""

from __future__ import annotations

import json
import os
import socket
import time

from stages.core import storage
from stages.core.errors import LockedError


def _holder() -> dict:
    return {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "slurm_job_id": os.environ.get("SLURM_JOB_ID"),
        "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class OutputLock:
    def __init__(self, output_dir: str):
        self.uri = storage.join(output_dir, ".lock")
        self.held = False

    def _describe(self, text: str) -> str:
        try:
            h = json.loads(text)
            return f"pid {h.get('pid')} on {h.get('host')} (Slurm job {h.get('slurm_job_id')}, since {h.get('since')})"
        except (ValueError, AttributeError):
            return "an unknown holder"

    def acquire(self, steal: bool = False) -> None:
        payload = json.dumps(_holder())
        if storage.is_local(self.uri):
            path = str(storage.local_path(self.uri))
            os.makedirs(os.path.dirname(path), exist_ok=True)
            for _ in range(2):
                try:
                    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
                except FileExistsError:
                    with open(path, encoding="utf-8") as f:
                        text = f.read()
                    try:
                        h = json.loads(text)
                    except ValueError:
                        h = {}
                    stale = h.get("host") == socket.gethostname() and not _alive(int(h.get("pid", 0) or 0))
                    if stale or steal:
                        os.unlink(path)
                        continue
                    raise LockedError(
                        f"output_dir is in use by another run: {self._describe(text)}. Wait for it to end, or "
                        f"remove {path} if that run is dead",
                        "$.spec.output_dir",
                    ) from None
                with os.fdopen(fd, "w") as f:
                    f.write(payload)
                self.held = True
                return
            raise LockedError("could not take the output_dir lock", "$.spec.output_dir")
        if storage.exists(self.uri) and not steal:
            raise LockedError(
                f"output_dir is in use by another run: {self._describe(storage.read_text(self.uri))}",
                "$.spec.output_dir",
            )
        storage.write_text_atomic(self.uri, payload)
        self.held = True

    def release(self) -> None:
        if self.held:
            storage.remove(self.uri)
            self.held = False
