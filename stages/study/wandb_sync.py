"""``study sync-wandb``: upload the study's offline W&B runs from a machine with internet (a login node).

Compute nodes run W&B offline (``WANDB_MODE=offline``); each stage keeps its offline run folders inside its output
folder on scratch, so they survive the job. This finds them in the output folder of every run the study plans, the
shared ones included (collections and untrained evaluations live under ``<root>/shared``, not the study's folder),
leaves out the ones ``wandb sync`` already marked as synced, and hands the rest to the ``wandb`` command line in one
call.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from stages.study.errors import StudyError


def offline_runs(output_dirs: list[Path]) -> list[Path]:
    """Offline run folders under the given run output folders that are not yet synced."""
    found = sorted({p for d in output_dirs for p in d.glob("**/offline-run-*") if p.is_dir()})
    return [p for p in found if not any(p.glob("*.wandb.synced"))]


def wandb_cli() -> str:
    beside = Path(sys.executable).parent / "wandb"
    if beside.is_file():
        return str(beside)
    found = shutil.which("wandb")
    if not found:
        raise StudyError("the `wandb` command is not installed here (pip install wandb)")
    return found


def sync(output_dirs: list[Path], dry_run: bool = False) -> tuple[list[Path], int]:
    runs = offline_runs(output_dirs)
    if dry_run or not runs:
        return runs, 0
    r = subprocess.run([wandb_cli(), "sync", *map(str, runs)])
    return runs, r.returncode
