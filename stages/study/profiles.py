"""Cluster profiles: one small YAML file per cluster under ``slurm/profiles/`` with everything site-specific.

Why files, not code: account names, partitions, GRES spellings, modules and bind roots change per site and per
allocation, and researchers edit them without touching Python. The model is closed, so a misspelled key is an
error naming the profile and the key.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import yaml
from pydantic import Field, ValidationError

from stages.core.model_base import StrictModel
from stages.study.errors import StudyError


def slurm_dir() -> Path:
    """The repository's ``slurm/`` folder (or ``$FLLM_SLURM_DIR``): profiles and the sbatch template."""
    return Path(os.environ.get("FLLM_SLURM_DIR") or Path(__file__).resolve().parents[2] / "slurm")


class ApptainerSettings(StrictModel):
    cleanenv: bool = Field(True, description="--cleanenv: only variables passed with --env enter the container.")
    contain: bool = Field(False, description="--contain (check that --nv still finds the driver on the cluster).")
    extra_args: list[str] = Field(default_factory=list, description="More `apptainer run` options.")


class ClusterProfile(StrictModel):
    name: str
    description: str = ""
    account: str | None = Field(None, description="--account (e.g. rrg-bengioy-ad, def-<prof>, aip-<pi>).")
    partition: str | None = Field(None, description="--partition for GPU stages; None lets Slurm route.")
    cpu_partition: str | None = Field(None, description="--partition for CPU-only runs; default `partition`.")
    gres: str = Field("gpu", description="GRES prefix; GPUs are asked as --gres=<gres>:<n> (gpu:a100l -> gpu:a100l:2).")
    max_time_minutes: int = Field(480, ge=1, description="Longest --time a job may ask; longer runs rely on requeue.")
    max_cpus_per_task: int | None = Field(None, ge=1, description="Cap on --cpus-per-task (small test nodes).")
    max_mem_gb: int | None = Field(None, ge=1, description="Cap on --mem.")
    max_gpus_per_node: int | None = Field(None, ge=0, description="Cap on GPUs per node.")
    gpu_card: str | None = Field(
        "H100-80GB", description="The GPU card of the GPU nodes (stages.study.costing.cards: H100-80GB, H200-141GB, "
        "A100-80GB, A100-40GB): its memory bounds the memory model, its speed the cost model.")
    gpu_memory_gib: float | None = Field(
        None, gt=0, le=1024, description="Memory of one card in GiB as the driver reports it; default the card's.")
    modules: list[str] = Field(default_factory=list, description="`module load` these first.")
    setup: list[str] = Field(default_factory=list, description="Extra shell lines run before the stage.")
    runs_root: str = Field("$SCRATCH/forgetting-llms/runs", description="Default --root of studies.")
    binds: list[str] = Field(default_factory=lambda: ["$SCRATCH"], description="Always bound into containers.")
    use_images: bool = Field(True, description="Run stages with `apptainer run <images_dir>/<image>.sif`.")
    images_dir: str | None = Field("$SCRATCH/forgetting-llms/images", description="Where the SIF files live.")
    copy_images_to_tmpdir: bool = Field(True, description="Copy the SIF to $SLURM_TMPDIR before running it.")
    run_from_tmpdir: bool = Field(True, description="cd to $SLURM_TMPDIR and use it as the container's -W.")
    internet: bool = Field(False, description="Whether compute nodes reach the internet (they never need to).")
    hf_home: str | None = Field("$SCRATCH/huggingface", description="HF_HOME on scratch (never $SLURM_TMPDIR).")
    wandb_mode: Literal["offline", "disabled"] = Field("offline", description="W&B on compute nodes.")
    signal: Literal["USR1", "USR2", "TERM"] = Field("USR2", description="Pre-timeout signal (NCCL may catch USR1).")
    signal_grace_s: int = Field(300, ge=10, le=3600,
                                description="Seconds before the limit to send it (at most half a job's limit).")
    max_restarts: int = Field(10, ge=0, le=1000, description="Requeues allowed after the pre-timeout signal.")
    apptainer: ApptainerSettings = Field(default_factory=ApptainerSettings)
    launcher: Literal["srun", "direct"] = Field("srun", description="Start the stage as an srun step, or directly.")
    arrays: bool = Field(True, description="Submit runs of one shape and the same dependencies as one array job.")
    array_throttle: int | None = Field(None, ge=1, description="At most this many array tasks at once (%N).")
    extra_directives: list[str] = Field(default_factory=list, description="More #SBATCH options, e.g. --constraint=x.")


def known_profiles() -> list[str]:
    d = slurm_dir() / "profiles"
    return sorted(p.stem for p in d.glob("*.yaml")) if d.is_dir() else []


def load_profile(name: str) -> ClusterProfile:
    path = slurm_dir() / "profiles" / f"{name}.yaml"
    if not path.is_file():
        known = ", ".join(known_profiles()) or "none"
        raise StudyError(f"unknown cluster {name!r}; profiles in {path.parent}: {known}")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        profile = ClusterProfile.model_validate({"name": name, **raw})
    except yaml.YAMLError as e:
        raise StudyError(f"profile {path} is not valid YAML: {e}") from None
    except ValidationError as e:
        errs = "; ".join(f"{'.'.join(map(str, x['loc']))}: {x['msg']}" for x in e.errors(include_url=False))
        raise StudyError(f"profile {path}: {errs}") from None
    from stages.study.costing.cards import CARDS

    if profile.gpu_card is not None and profile.gpu_card not in CARDS:
        raise StudyError(f"profile {path}: gpu_card: unknown card {profile.gpu_card!r}; known: {', '.join(CARDS)}")
    return profile
