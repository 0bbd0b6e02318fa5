"""`study sync-wandb` finds the offline W&B runs that stages leave in their output folders (a real offline run of
wandb here) and leaves out those `wandb sync` already marked as synced."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from stages.study.cli import main
from tests.study.conftest import counter_run, write_study


def test_lists_unsynced_offline_runs(tmp_path, monkeypatch):
    wandb = pytest.importorskip("wandb")
    path, root = write_study(tmp_path, "wb", [counter_run("a", steps=1)]), tmp_path / "runs"
    assert CliRunner().invoke(main, ["plan", str(path), "--root", str(root)]).exit_code == 0
    out_dir = root / "wb" / "a" / "out"
    out_dir.mkdir()
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    run = wandb.init(project="fllm-test", dir=str(out_dir), mode="offline")
    run.log({"loss": 1.0})
    run.finish()
    offline = next((out_dir / "wandb").glob("offline-run-*"))

    res = CliRunner().invoke(main, ["sync-wandb", str(path), "--root", str(root), "--dry-run"])
    assert res.exit_code == 0, res.output
    assert f"would sync {offline}" in res.output and "1 offline W&B runs to sync" in res.output

    marker = next(offline.glob("*.wandb")).with_suffix(".wandb.synced")
    marker.touch()
    res = CliRunner().invoke(main, ["sync-wandb", str(path), "--root", str(root), "--dry-run"])
    assert "0 offline W&B runs to sync" in res.output
