"""The conductor's error for bad input (a study file, a profile, a command-line choice).

It is a ``ValueError`` like every bad-input error of the project, so the CLI turns it into exit code 2 with the
message, before anything is written or submitted.
"""

from __future__ import annotations


class StudyError(ValueError):
    """A study, profile or request is wrong; ``where`` names the key or run at fault."""

    def __init__(self, message: str, where: str | None = None):
        super().__init__(message)
        self.where = where
        self.message = message

    def __str__(self) -> str:
        return f"{self.where}: {self.message}" if self.where else self.message
