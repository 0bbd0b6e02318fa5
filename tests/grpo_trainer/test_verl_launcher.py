"""The launcher script the stage runs (stages/lm/verl/ray_launch.py): one node hands the overrides to verl's real
``main_ppo`` untouched; several nodes refuse what cannot work before any Ray process starts. The multi-node run itself
(two real Ray nodes on this machine) is tests/grpo_trainer/test_ray_two_nodes.py.

The node list: a plain one (``host`` or ``a,b``) is split without Slurm; a compressed one goes through the real
``scontrol`` of the local Slurm, which the test starts itself (the ``slurm_cluster`` session fixture) rather than
relying on an earlier test (issue 17).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from stages.grpo_trainer.params import GRPOParams
from stages.grpo_trainer.verl_overrides import VerlJob, build_overrides
from stages.lm.verl.ray_launch import write_launcher
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


def _refused_before_ray(tmp_path, **extra: str) -> subprocess.CompletedProcess:
    """Two nodes, this host first: the multi-node branch up to the point where Ray would start."""
    host = socket.gethostname().split(".")[0]
    script = write_launcher(tmp_path / "launch.sh", 2, 0, 6393, sys.executable)
    env = _env(SLURM_JOB_NODELIST=f"{host},other-node", FLLM_NODE_RUNNER="false", SLURM_JOB_ID="1", **extra)
    return subprocess.run(["bash", str(script), "x=1"], env=env, capture_output=True, text=True, timeout=60,
                          check=False)


def test_a_long_ray_temp_dir_is_refused(tmp_path):
    """Ray's socket paths must fit in 107 bytes: a long temp root is refused before anything starts."""
    res = _refused_before_ray(tmp_path, FLLM_RAY_TMPDIR=str(tmp_path / ("x" * 40)))
    assert res.returncode == 2, res.stderr
    assert "is too long" in res.stderr and "107 bytes" in res.stderr


def test_the_launcher_must_run_on_a_node_of_the_allocation(tmp_path):
    res = _refused_before_ray(tmp_path, SLURMD_NODENAME="not-in-the-list")
    assert res.returncode == 2, res.stderr
    assert "is not among the first 2 node(s)" in res.stderr


def test_fewer_gpus_from_slurm_than_the_manifest_asks_is_refused(tmp_path):
    host = socket.gethostname().split(".")[0]
    script = write_launcher(tmp_path / "launch.sh", 2, 4, 6393, sys.executable)
    env = _env(SLURM_JOB_NODELIST=f"{host},b", FLLM_NODE_RUNNER="false", SLURM_GPUS_ON_NODE="2")
    res = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True, timeout=60, check=False)
    assert res.returncode == 2 and "Slurm gave this node 2 GPU(s), the manifest asks for 4" in res.stderr


def test_a_busy_head_port_fails_clearly(tmp_path):
    """Another job's Ray on the same port: the launcher says so instead of starting a second head."""
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        if port + 1799 > 65535:
            pytest.skip("the free port is too high for a Ray port block")
        host = socket.gethostname().split(".")[0]
        script = write_launcher(tmp_path / "launch.sh", 2, 0, port, sys.executable)
        env = _env(SLURM_JOB_NODELIST=f"{host},b", FLLM_NODE_RUNNER="false")
        res = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True, timeout=60, check=False)
    assert res.returncode == 1, res.stderr
    assert f"port {port} is already in use" in res.stderr


def test_gpu_nodes_without_infiniband_get_a_warning():
    """NCCL's silent fall-back to TCP is announced by the health check; CPU-only or one-node clusters need no IB."""
    from stages.lm.verl.ray_health import warnings_of

    ib = {"host": "a", "libibverbs": True, "dev_infiniband": True}
    no_verbs = {"host": "b", "libibverbs": False, "dev_infiniband": True}
    no_device = {"host": "c", "libibverbs": True, "dev_infiniband": False}
    warnings = warnings_of([ib, no_verbs, no_device], gpus_per_node=4)
    assert warnings == ["b: no libibverbs.so.1: NCCL will use TCP sockets between nodes",
                        "c: no /dev/infiniband: NCCL will use TCP sockets between nodes"]
    assert warnings_of([no_verbs, no_device], gpus_per_node=0) == [] and warnings_of([no_verbs], 4) == []
