"""The base class of every manifest and params model: closed (unknown keys are errors) and documented.

Closed schemas are what make a typo in a manifest an error instead of a silently ignored setting.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class StrictModel(BaseModel):
    """A pydantic model that forbids unknown keys and validates assignments."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, populate_by_name=True)
