"""The light core every stage stands on: the manifest contract, the run lifecycle, storage and the CLI factory.

It depends only on click, pydantic, fsspec and the standard library, so that ``<stage> --help``, ``validate``,
``schema`` and ``describe`` work in any environment, including a login node without torch.
"""

from stages.core.artifacts import ArtifactKind, ArtifactRef
from stages.core.errors import InputError, ManifestError, NotImplementedYet, Preempted
from stages.core.manifest import SCHEMA_ID, RunState
from stages.core.stage import InputDecl, OutputDecl, RunContext, StageDef, StageResult

__all__ = [
    "SCHEMA_ID",
    "ArtifactKind",
    "ArtifactRef",
    "InputDecl",
    "InputError",
    "ManifestError",
    "NotImplementedYet",
    "OutputDecl",
    "Preempted",
    "RunContext",
    "RunState",
    "StageDef",
    "StageResult",
]
