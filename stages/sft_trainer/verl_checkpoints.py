"""Reading verl's SFT checkpoint folder: the tracker file and the ``global_step_N`` folders (verl reference §2.5).

Why the stage reads them itself: verl's exit status alone cannot be trusted. A resume from an epoch-boundary
checkpoint exits 0 without training (bug #7401), so after every run the stage checks that the tracker reached the
planned number of steps; and after a stop signal it names the newest complete checkpoint as the one to resume.
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
