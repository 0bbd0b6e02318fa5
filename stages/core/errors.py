"""Exceptions that carry a meaning for the lifecycle, and therefore an exit code.

A stage raises ``InputError`` (a ``ValueError``) for anything the user got wrong; the lifecycle turns it into exit
code 2 with nothing written when it happens before the run starts. ``Preempted`` turns into exit code 75 so that the
sbatch wrapper requeues the job, and ``NotImplementedYet`` makes an unbuilt path fail loudly instead of pretending.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_INVALID = 2
EXIT_PREEMPTED = 75


class ManifestError(ValueError):
    """The manifest or its inputs are invalid. ``path`` is the JSON path of the fault (``$.spec.params.lr``)."""

    def __init__(self, message: str, path: str = "$"):
        super().__init__(message)
        self.path = path
        self.message = message

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class InputError(ManifestError):
    """An input artifact exists but is unusable (wrong columns, empty, too long ...)."""


class NotImplementedYet(NotImplementedError):
    """An engine or mode that is declared in the params but not built yet."""

    def __init__(self, what: str):
        super().__init__(f"not implemented yet: {what}")


class InputPending(Exception):
    """A plan-time check touched an input whose upstream run has not produced it yet (``<stage> check``).

    Not a ``ValueError``: it is not the user's fault, and the check reports the rest of the checks as deferred to the
    run's own preflight, which reads the input once the upstream run has succeeded.
    """

    def __init__(self, name: str, upstream: str):
        super().__init__(f"input {name!r} is produced by {upstream}, which has not run yet")
        self.name = name
        self.upstream = upstream


class Preempted(Exception):
    """Raised by a stage after it saved a checkpoint in answer to a stop signal."""

    def __init__(self, checkpoint: str | None = None, signal_name: str | None = None):
        super().__init__(f"preempted by {signal_name or 'signal'}; checkpoint: {checkpoint or 'none'}")
        self.checkpoint = checkpoint
        self.signal_name = signal_name


class LockedError(ManifestError):
    """Another run holds the output directory."""
