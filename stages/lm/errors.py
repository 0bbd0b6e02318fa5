"""Error types of the LM core.

Why: bad input (a missing model folder, an impossible config, a chat that does not end with the assistant) must
surface as a clear message, and the stage lifecycle maps ValueError subclasses to exit code 2 without writing
anything. Runtime failures (a server that keeps failing) stay RuntimeErrors.
"""

from __future__ import annotations


class LMInputError(ValueError):
    """Invalid input to the LM core: the message names what is wrong and how to fix it."""


class ChatFormatError(LMInputError):
    """A conversation that cannot be formatted or masked as asked."""


class GenerationBackendError(RuntimeError):
    """A generation backend failed after its retries (e.g. an endpoint kept answering 5xx)."""
