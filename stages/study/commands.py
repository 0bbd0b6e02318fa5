"""The command line that runs one manifest: the stage's console script, an explicit command, or ``apptainer run``.

The conductor launches stages as processes and never imports their run code. One builder serves the local
executor (argv with real paths) and the sbatch renderer (shell words that may hold ``$SCRATCH``-style variables,
expanded on the compute node). The apptainer line binds what the run reads and writes (derived from its manifest's
inputs and output folder, plus the profile's roots), passes ``--nv`` only to GPU runs, and sets the Hugging Face and
W&B offline variables explicitly with ``--env`` so they hold even under ``--cleanenv``.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from stages.core.provenance import SLURM_VARS
from stages.study.dag import PlannedRun
from stages.study.errors import StudyError

OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "WANDB_MODE": "offline",
}
# Passed through into the container when the host sets them (for provenance, GPU binding and W&B run ids).
PASS_THROUGH = (
    "HF_HOME",
    "WANDB_DIR",
    "WANDB_RUN_ID",
    "WANDB_RESUME",
    "FLLM_CLUSTER",
    "CUDA_VISIBLE_DEVICES",
    *SLURM_VARS,  # exactly the Slurm facts a stage records in its provenance
)


def stage_script(stage: str) -> str:
    """The stage's console script: next to this Python first (the venv), else on PATH."""
    beside = Path(sys.executable).parent / stage
    if beside.is_file():
        return str(beside)
    found = shutil.which(stage)
    if found:
        return found
    raise StudyError(f"the {stage} console script is not installed here (run `make setup`, or give images)")


def _covered(path: str, roots: list[str]) -> bool:
    return any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots)


def bind_paths(runs: list[PlannedRun], roots: list[str]) -> list[str]:
    """Folders to bind: the given roots, then every input folder and output folder not already under one."""
    binds: list[str] = []
    for r in roots:
        if r and not _covered(r, binds):
            binds.append(r)
    for run in runs:
        spec = run.manifest["spec"]
        wanted = [ref["uri"] for ref in spec["inputs"].values() if ref.get("uri")] + [run.run_dir]
        for path in wanted:
            if "://" in path:
                continue
            if not _covered(path, binds):
                binds.append(path)
    return binds


def apptainer_words(sif: str, gpu: bool, binds: list[str], env: dict[str, str], workdir: str | None = None,
                    cleanenv: bool = False, extra: list[str] | None = None) -> list[str]:
    """``apptainer run`` and its options, up to and including the image; the caller appends ``--manifest M``."""
    words = ["apptainer", "run"]
    if gpu:
        words.append("--nv")
    if cleanenv:
        words.append("--cleanenv")
    if workdir:
        words += ["-W", workdir]
    for b in binds:
        words += ["-B", b]
    for k, v in env.items():
        words += ["--env", f"{k}={v}"]
    return words + list(extra or []) + [sif]


def local_argv(run: PlannedRun, manifest_path: str, images: str | None = None, force: bool = False) -> list[str]:
    """argv that runs the manifest on this machine (``--force``: replace a record of other work)."""
    tail = ["--manifest", manifest_path] + (["--force"] if force else [])
    if run.command:
        return [*run.command, *tail]
    if images is None:
        return [stage_script(run.stage), *tail]
    if shutil.which("apptainer") is None:
        raise StudyError("--images was given but `apptainer` is not on PATH")
    sif = os.path.join(images, f"{run.image}.sif")
    if not os.path.isfile(sif):
        raise StudyError(f"image {sif} does not exist (build it with `make sifs`)")
    env = dict(OFFLINE_ENV)
    env.update({k: os.environ[k] for k in PASS_THROUGH if k in os.environ})
    binds = [os.path.expandvars(b) for b in bind_paths([run], [])]
    return [*apptainer_words(sif, run.gpus > 0, binds, env), *tail]


def check_argv(stage: str, image: str | None, runs: list[PlannedRun], images: str | None = None) -> list[str]:
    """argv of ``<stage> check --manifest - --json`` (the manifests come on stdin), here or in the stage's image."""
    tail = ["check", "--manifest", "-", "--json"]
    if images is None:
        return [stage_script(stage), *tail]
    if shutil.which("apptainer") is None:
        raise StudyError("--images was given but `apptainer` is not on PATH")
    sif = os.path.join(os.path.expandvars(images), f"{image}.sif")
    if not os.path.isfile(sif):
        raise StudyError(f"image {sif} does not exist (build it with `make sifs`)")
    binds = [os.path.expandvars(b) for b in bind_paths(runs, [])]
    return [*apptainer_words(sif, False, binds, dict(OFFLINE_ENV)), *tail]
