"""Reading verl's checkpoint folder: the tracker file and the ``global_step_N`` folders (verl reference §2.5, §3.6).

Why the stages read them themselves: verl's exit status alone cannot be trusted. An SFT resume from an
epoch-boundary checkpoint exits 0 without training (bug #7401), and the PPO trainer writes its tracker with a plain
write after the checkpoint (not atomic), so a kill can leave it cut off. After every run a stage checks that the
tracker reached the planned step; after a stop signal it names the newest complete checkpoint as the one to resume.
SFT checkpoints hold the model shards directly; PPO checkpoints (grpo-trainer, pi-distill) hold them in ``actor/``.
"""

from __future__ import annotations

import json
from pathlib import Path

TRACKER = "latest_checkpointed_iteration.txt"
STEP_PREFIX = "global_step_"


def tracked_step(root: Path) -> int | None:
    """The step in verl's tracker file, or None when there is no (readable) tracker."""
    path = Path(root) / TRACKER
    try:
        return int(path.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


def step_dir(root: Path, step: int) -> Path:
    return Path(root) / f"{STEP_PREFIX}{step}"


def latest_checkpoint(root: Path) -> Path | None:
    """The folder the tracker points at, if it exists (verl writes the tracker after the folder is complete)."""
    step = tracked_step(root)
    if step is None:
        return None
    folder = step_dir(root, step)
    return folder if folder.is_dir() else None


def checkpoint_world_size(folder: Path) -> int | None:
    """How many ranks wrote the shards of ``folder`` (verl's ``fsdp_config.json``); None when unknown."""
    try:
        return int(json.loads((Path(folder) / "fsdp_config.json").read_text())["world_size"])
    except (FileNotFoundError, KeyError, ValueError, TypeError):
        return None


def finished_step(root: Path, part: str = "actor") -> int | None:
    """The last step a PPO trainer finished saving, or None; raises when the tracker is cut off or points at a step
    whose ``part`` folder is missing (the checkpoint cannot be resumed from or merged)."""
    path = Path(root) / TRACKER
    if not path.is_file():
        return None
    text = path.read_text(encoding="utf-8").strip()
    if not text.isdigit():
        raise RuntimeError(f"{path} holds {text!r}, not a step number: the last checkpoint write was cut off")
    step = int(text)
    if not (step_dir(root, step) / part).is_dir():
        raise RuntimeError(f"{path} names step {step}, but {STEP_PREFIX}{step}/{part} is missing")
    return step
