"""The launcher script the stage runs: one node hands the overrides to verl's real ``main_ppo`` untouched; several
nodes start a Ray head (and workers through srun), wait for them, and attach the entry point through RAY_ADDRESS.

The node list: a plain one (``host`` or ``a,b``) is split without Slurm, so the Ray test runs on any machine with
``SLURM_JOB_NODELIST`` naming this host; a compressed one goes through the real ``scontrol`` of the local Slurm, which
the test starts itself (the ``slurm_cluster`` session fixture) rather than relying on an earlier test (issue 17).
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


def _node_list_check(tmp_path, nodelist: str, nnodes: int, **extra: str) -> subprocess.CompletedProcess:
    """Run the multi-node branch asking for more nodes than the list holds: it stops (exit 2) right after reading the
    list, before any Ray process starts, and says which hosts it read."""
    script = write_launcher(tmp_path / "launch.sh", nnodes, 0, 6392, sys.executable)
    return subprocess.run(["bash", str(script), "x=1"], env=_env(SLURM_JOB_NODELIST=nodelist, **extra),
                          capture_output=True, text=True, timeout=60, check=False)


def _empty_conf(tmp_path) -> str:
    """An empty Slurm configuration: scontrol can resolve nothing with it."""
    empty = tmp_path / "slurm.conf"
    empty.write_text("")
    return str(empty)


def test_plain_node_list_needs_no_slurm_configuration(tmp_path):
    """`a,b` is split in bash: scontrol, pointed at an empty configuration here, would fail if it were asked."""
    res = _node_list_check(tmp_path, "node-a,node-b", 3, SLURM_CONF=_empty_conf(tmp_path))
    assert res.returncode == 2, res.stderr
    assert "the allocation has 2 node(s) (node-a node-b), the manifest asks for 3" in res.stderr


@pytest.mark.slurm
def test_compressed_node_list_without_slurm_configuration_fails_clearly(tmp_path):
    """The real scontrol with no usable configuration expands nothing: the script says so instead of counting 0."""
    res = _node_list_check(tmp_path, "node[1-3]", 2, SLURM_CONF=_empty_conf(tmp_path))
    assert res.returncode == 2, res.stderr
    assert "'scontrol show hostnames node[1-3]' gave no host" in res.stderr


@pytest.mark.slurm
def test_compressed_node_list_expands_with_scontrol(tmp_path, slurm_cluster):
    """With the local Slurm configured, `host,x[1-2]` expands to three hosts through the real scontrol."""
    host = socket.gethostname().split(".")[0]
    res = _node_list_check(tmp_path, f"{host},x[1-2]", 4)
    assert res.returncode == 2, res.stderr
    assert f"the allocation has 3 node(s) ({host} x1 x2), the manifest asks for 4" in res.stderr


def test_cluster_mode_starts_ray_and_attaches(tmp_path):
    """The multi-node branch on this host alone: Ray head from the node list, wait for it, attach the entry point
    through RAY_ADDRESS (as main_ppo does), pass the arguments through, and leave no Ray process behind."""
    pytest.importorskip("ray")
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
