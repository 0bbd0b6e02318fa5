"""The launcher script the stage runs: one node hands the overrides to verl's real ``main_ppo`` untouched; several
nodes start a Ray head (and workers through srun), wait for them, and attach the entry point through RAY_ADDRESS.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from stages.grpo_trainer.params import GRPOParams
from stages.grpo_trainer.verl_launcher import write_launcher
from stages.grpo_trainer.verl_overrides import VerlJob, build_overrides
from tests.grpo_trainer.helpers import REPO


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    env.update(PYTHONPATH=str(REPO), **extra)
    return env


@pytest.mark.parametrize("nodes", [1, 2, 4])
def test_script_is_valid_bash(tmp_path, nodes):
    script = write_launcher(tmp_path / "launch.sh", nodes, 4, 6379, sys.executable)
    assert subprocess.run(["bash", "-n", str(script)], check=False).returncode == 0
    assert os.access(script, os.X_OK)
    text = script.read_text()
    assert "scontrol show hostnames" in text and 'nodes_array=("$nodes")' not in text


def test_one_node_passes_overrides_to_main_ppo(tmp_path):
    """Real verl: `main_ppo --cfg job` composes exactly our overrides (odd characters included) and exits."""
    pytest.importorskip("verl")
    tricky = str(tmp_path / "it's a dir, with=odd [chars]" / "train.parquet")
    job = VerlJob(model_path="/models/m", train_files=tricky, output_dir=str(tmp_path / "run"),
                  reward_path="/r/verl_reward.py", nnodes=1, gpus_per_node=2, cpus=6, total_steps=5)
    overrides = build_overrides(GRPOParams(), job)
    script = write_launcher(tmp_path / "launch.sh", 1, 2, 6379, sys.executable)
    res = subprocess.run(["bash", str(script), *overrides, "--cfg", "job"], cwd=tmp_path, env=_env(),
                         capture_output=True, text=True, timeout=300, check=False)
    assert res.returncode == 0, res.stderr[-3000:]
    import yaml

    cfg = yaml.safe_load(res.stdout)
    assert cfg["data"]["train_files"] == tricky
    assert cfg["algorithm"]["adv_estimator"] == "grpo" and cfg["ray_kwargs"]["ray_init"]["num_cpus"] == 6


def test_several_nodes_outside_slurm_fail_clearly(tmp_path):
    script = write_launcher(tmp_path / "launch.sh", 2, 4, 6379, sys.executable)
    res = subprocess.run(["bash", str(script), "x=1"], env=_env(), capture_output=True, text=True, timeout=60, check=False)
    assert res.returncode == 2
    assert "SLURM_JOB_NODELIST" in res.stderr or "scontrol" in res.stderr


def test_cluster_mode_starts_ray_and_attaches(tmp_path):
    """The multi-node branch on this host alone: Ray head from the node list, wait for it, attach the entry point
    through RAY_ADDRESS (as main_ppo does), pass the arguments through, and leave no Ray process behind."""
    pytest.importorskip("ray")
    if subprocess.run(["bash", "-c", "command -v scontrol && command -v srun"], capture_output=True, check=False).returncode:
        pytest.skip("needs Slurm's scontrol and srun installed (make system)")
    host = socket.gethostname().split(".")[0]
    script = write_launcher(tmp_path / "launch.sh", 1, 0, 6391, sys.executable)
    env = _env(SLURM_JOB_NODELIST=host, FLLM_FORCE_RAY_CLUSTER="1", FLLM_VERL_ENTRY="tests.grpo_trainer.ray_probe",
               RAY_USAGE_STATS_ENABLED="0")
    res = subprocess.run(["bash", str(script), "a='b c'", "k=v"], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=240, check=False)
    assert res.returncode == 0, (res.stdout + res.stderr)[-3000:]
    probe = next(line for line in res.stdout.splitlines() if line.startswith("PROBE "))
    import json

    found = json.loads(probe[len("PROBE "):])
    assert found["nodes"] == 1 and found["address"].endswith(":6391")
    assert found["args"] == ["a='b c'", "k=v"]
    left = subprocess.run(["pgrep", "-f", "gcs_server.*6391"], capture_output=True, text=True, check=False)
    assert left.stdout.strip() == "", "the launcher left its Ray head running"
