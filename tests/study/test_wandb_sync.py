"""`study sync-wandb` finds the offline W&B runs that stages leave in their output folders (a real offline run of
wandb here), the shared runs' folders under ``<root>/shared`` included, and leaves out those `wandb sync` already
marked as synced."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from stages.study.cli import main
from stages.study.definition import load_study
from stages.study.planner import plan_study
from tests.study.conftest import counter_run, write_study


def offline_run(out_dir: Path, monkeypatch) -> Path:
    """A real offline W&B run logged into a stage's output folder, as a stage on a compute node leaves it."""
    wandb = pytest.importorskip("wandb")
    out_dir.mkdir(parents=True, exist_ok=True)
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    run = wandb.init(project="fllm-test", dir=str(out_dir), mode="offline")
    run.log({"loss": 1.0})
    run.finish()
    return next((out_dir / "wandb").glob("offline-run-*"))


def test_lists_unsynced_offline_runs(tmp_path, monkeypatch):
    path, root = write_study(tmp_path, "wb", [counter_run("a", steps=1)]), tmp_path / "runs"
    assert CliRunner().invoke(main, ["plan", str(path), "--root", str(root)]).exit_code == 0
    offline = offline_run(root / "wb" / "a" / "out", monkeypatch)

    res = CliRunner().invoke(main, ["sync-wandb", str(path), "--root", str(root), "--dry-run"])
    assert res.exit_code == 0, res.output
    assert f"would sync {offline}" in res.output and "1 offline W&B runs to sync" in res.output

    marker = next(offline.glob("*.wandb")).with_suffix(".wandb.synced")
    marker.touch()
    res = CliRunner().invoke(main, ["sync-wandb", str(path), "--root", str(root), "--dry-run"])
    assert "0 offline W&B runs to sync" in res.output


def test_finds_the_runs_of_shared_folders(fake_scratch, tmp_path, monkeypatch):
    root = tmp_path / "runs"
    plan = plan_study(load_study("phase1"), str(root), "mila")
    shared = next(r for r in plan.runs.values() if r.stage == "collector")
    assert Path(shared.run_dir).parent == root / "shared"
    offline = offline_run(Path(shared.output_dir), monkeypatch)
    elsewhere = offline_run(root / "shared" / "not-planned-here" / "out", monkeypatch)  # another study's shared run

    res = CliRunner().invoke(main, ["sync-wandb", "phase1", "--root", str(root), "--cluster", "mila", "--dry-run"])
    assert res.exit_code == 0, res.output
    assert f"would sync {offline}" in res.output and str(elsewhere) not in res.output
    assert "1 offline W&B runs to sync" in res.output
