"""The torchrun command lines: one node standalone, several nodes through srun with a c10d rendezvous; SIGUSR2 is
among the signals torchrun forwards to its workers (else it would die and orphan them)."""

from __future__ import annotations

import sys

from stages.sft_trainer.launcher import child_environment, torchrun_command
from stages.sft_trainer.plan import World


def test_one_node():
    cmd = torchrun_command(World(1, 4), "stages.sft_trainer.verl_launch", ["a=1", "b=2"])
    assert cmd[:3] == [sys.executable, "-m", "torch.distributed.run"]
    assert "--standalone" in cmd and "--nproc_per_node=4" in cmd and "srun" not in cmd
    assert any(a.startswith("--signals-to-handle=") and "SIGUSR2" in a for a in cmd)
    assert cmd[-4:] == ["-m", "stages.sft_trainer.verl_launch", "a=1", "b=2"]


def test_two_nodes(monkeypatch):
    monkeypatch.setenv("SLURM_JOB_ID", "4242")
    cmd = torchrun_command(World(2, 4), "stages.sft_trainer.verl_launch", ["a=1"])
    assert cmd[0] == "srun" and "--nodes=2" in cmd and "--ntasks-per-node=1" in cmd
    assert "--nnodes=2" in cmd and "--nproc_per_node=4" in cmd and "--rdzv_backend=c10d" in cmd
    assert "--rdzv_id=4242" in cmd and "--standalone" not in cmd
    assert any(a.startswith("--rdzv_endpoint=") and a.endswith(":29500") for a in cmd)


def test_workers_can_import_the_stage():
    env = child_environment({"X": "1"})
    assert env["X"] == "1"
    import stages

    root = str(__import__("pathlib").Path(stages.__file__).resolve().parents[1])
    assert env["PYTHONPATH"].split(":")[0] == root
