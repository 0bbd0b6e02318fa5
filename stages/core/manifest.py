"""The manifest: one JSON document that is at once the request, the live status and the final record of a run.

``spec`` is written by the user or the conductor and never changed by the stage; ``status``, ``provenance``,
``outputs`` and ``summary`` are written by the stage. Each stage gets its own concrete manifest class (made by
``manifest_model``) whose ``spec.params`` is that stage's closed params model, so one JSON Schema per stage
documents exactly what a manifest may say.
"""

from __future__ import annotations

from enum import Enum
from typing import Any, Literal

from pydantic import Field, create_model

from stages.core.artifacts import ArtifactRef
from stages.core.model_base import StrictModel

SCHEMA_ID = "forgetting-llms/manifest/v1"
RUN_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,199}$"


class RunState(str, Enum):
    pending = "pending"
    running = "running"
    preempted = "preempted"  # not terminal: the job will be requeued and resume
    succeeded = "succeeded"
    failed = "failed"
    skipped = "skipped"  # the conductor did not run it (e.g. an upstream failed)


class Resources(StrictModel):
    """What the Slurm renderer asks for. Never part of the spec hash: resources do not change results."""

    nodes: int = Field(1, ge=1, le=64, description="Number of nodes.")
    gpus_per_node: int = Field(0, ge=0, le=16, description="GPUs per node (0 for CPU stages).")
    cpus_per_task: int = Field(4, ge=1, le=512, description="CPU cores for the job.")
    mem_gb: int = Field(16, ge=1, le=4096, description="Host memory in GB.")
    time_minutes: int = Field(60, ge=1, le=10080, description="Wall-time limit in minutes (Slurm --time).")


class Tracking(StrictModel):
    """Experiment tracking. Stages always write their own metrics JSONL; W&B is best effort on top."""

    wandb: bool = Field(False, description="Log to Weights & Biases as well as to metrics JSONL.")
    project: str = Field("forgetting-llms", description="W&B project.")
    entity: str | None = Field(None, description="W&B entity (team); None uses the default.")
    group: str | None = Field(None, description="W&B group; the conductor sets the study name.")
    mode: Literal["offline", "online", "disabled"] = Field(
        "offline", description="W&B mode. Compute nodes have no internet: keep offline and `study sync-wandb` later."
    )


class Runtime(StrictModel):
    """How the run executes. Seed, engine and thinking mode change results and enter the spec hash."""

    seed: int = Field(0, ge=0, le=2**31 - 1, description="Seed for every random choice of the run.")
    engine: str | None = Field(
        None, description="Engine or backend (per stage, see `describe`); None takes the stage's default."
    )
    thinking: bool = Field(
        False, description="Qwen3 thinking mode, a study-level setting used alike for collection, training, eval."
    )
    offline: bool = Field(True, description="Set the Hugging Face offline variables; nothing reaches the hub.")
    checkpoint_every_minutes: float = Field(
        20.0, gt=0, le=600, description="Save a resumable checkpoint at least this often (preemption gives no grace)."
    )
    tracking: Tracking = Field(default_factory=Tracking)


class SpecBase(StrictModel):
    """The request. ``params`` is filled in by each stage's concrete subclass."""

    inputs: dict[str, ArtifactRef] = Field(default_factory=dict, description="Named input artifacts.")
    output_dir: str = Field(..., min_length=1, description="fsspec URI of the run folder; `$SCRATCH` etc. expanded.")
    resources: Resources = Field(default_factory=Resources)
    runtime: Runtime = Field(default_factory=Runtime)


class Status(StrictModel):
    state: RunState = RunState.pending
    attempt: int = Field(0, ge=0, description="How many times the run was started.")
    restart_count: int = Field(0, ge=0, description="SLURM_RESTART_COUNT of the latest attempt.")
    started_at: str | None = None
    updated_at: str | None = None
    ended_at: str | None = None
    progress: float | None = Field(None, ge=0.0, le=1.0)
    progress_note: str | None = None
    last_checkpoint: str | None = None
    message: str | None = None
    exit_code: int | None = None


class Provenance(StrictModel):
    spec_hash: str | None = None
    package_version: str | None = None
    git_commit: str | None = None
    git_dirty: bool | None = None
    image: str | None = None
    image_digest: str | None = None
    python: str | None = None
    libraries: dict[str, str] = Field(default_factory=dict)
    host: str | None = None
    hardware: dict[str, Any] = Field(default_factory=dict)
    slurm: dict[str, str] = Field(default_factory=dict)
    environment: dict[str, str] = Field(default_factory=dict, description="Allow-listed environment variables.")
    engine: str | None = None
    engine_config: dict[str, Any] | None = Field(None, description="Resolved engine config (e.g. verl overrides).")


class ManifestBase(StrictModel):
    schema_id: Literal["forgetting-llms/manifest/v1"] = Field(SCHEMA_ID, alias="schema")
    stage: str
    run_id: str = Field(..., pattern=RUN_ID_PATTERN, description="Stable, human-readable id of the run.")
    notes: str | None = Field(None, description="Free text for people, e.g. the exact command that runs this file.")
    spec: SpecBase
    status: Status = Field(default_factory=Status)
    provenance: Provenance = Field(default_factory=Provenance)
    outputs: dict[str, ArtifactRef] = Field(default_factory=dict)
    summary: dict[str, float | int | str | bool | None] = Field(default_factory=dict)

    def to_json(self) -> str:
        return self.model_dump_json(by_alias=True, indent=2, exclude_none=False) + "\n"


def manifest_model(stage: str, params_cls: type[StrictModel]) -> type[ManifestBase]:
    """Build the concrete manifest class of one stage."""
    camel = "".join(p.capitalize() for p in stage.replace("-", "_").split("_"))
    spec_cls = create_model(
        f"{camel}Spec",
        __base__=SpecBase,
        params=(params_cls, Field(default_factory=params_cls, description=f"Parameters of the {stage} stage.")),
    )
    return create_model(
        f"{camel}Manifest",
        __base__=ManifestBase,
        stage=(Literal[stage], Field(..., description="Which stage this manifest is for.")),  # type: ignore[valid-type]
        spec=(spec_cls, ...),
    )
