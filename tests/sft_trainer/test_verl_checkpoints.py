"""Reading verl's checkpoint folder, and the resume guards built on it (epoch boundary, world size)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stages.sft_trainer.plan import World
from stages.sft_trainer.prepare import Prepared
from stages.sft_trainer.selection import Selection
from stages.lm.verl.checkpoints import checkpoint_world_size, latest_checkpoint, tracked_step
from stages.sft_trainer.verl_engine import _guard_resume_point


def layout(root: Path, step: int, world: int) -> Path:
    folder = root / f"global_step_{step}"
    folder.mkdir(parents=True)
    (folder / "fsdp_config.json").write_text(json.dumps({"FSDP_version": 2, "world_size": world}))
    (root / "latest_checkpointed_iteration.txt").write_text(f"{step}\n")
    return folder


def prepared(per_epoch: int, total: int, ranks: int) -> Prepared:
    return Prepared(rows=[], selection=Selection([], [], 0, 0), world=World(1, ranks, cpu=True),
                    steps_per_epoch=per_epoch, total_steps=total)


def test_tracker_reading(tmp_path):
    assert tracked_step(tmp_path) is None and latest_checkpoint(tmp_path) is None
    (tmp_path / "latest_checkpointed_iteration.txt").write_text("garbage")
    assert tracked_step(tmp_path) is None
    folder = layout(tmp_path, 6, 2)
    assert tracked_step(tmp_path) == 6 and latest_checkpoint(tmp_path) == folder
    assert checkpoint_world_size(folder) == 2 and checkpoint_world_size(tmp_path) is None


def test_guard_refuses_an_epoch_boundary_checkpoint(tmp_path):
    layout(tmp_path, 8, 1)
    with pytest.raises(RuntimeError, match="epoch boundary"):
        _guard_resume_point(tmp_path, prepared(per_epoch=8, total=16, ranks=1))
    _guard_resume_point(tmp_path, prepared(per_epoch=8, total=8, ranks=1))  # the final step: nothing to resume


def test_guard_refuses_another_world_size(tmp_path):
    layout(tmp_path, 3, 2)
    with pytest.raises(RuntimeError, match="written by 2 ranks but this job has 4"):
        _guard_resume_point(tmp_path, prepared(per_epoch=8, total=16, ranks=4))
    _guard_resume_point(tmp_path, prepared(per_epoch=8, total=16, ranks=2))
