"""The launcher's multi-node logic against a real two-node Ray cluster on this one machine, through the same
``launch.sh`` that ``grpo-trainer`` writes and runs inside an sbatch job.

Only the step that places a process on another host is replaced: ``FLLM_NODE_RUNNER`` (the launcher's hook for
what ``srun -w <node>`` does) is a script that runs the command here, with a cleared environment as
``apptainer exec --cleanenv`` would. The node list names this host and a second, made-up one; the launcher starts a
real Ray head here and a real second ``ray start`` through the hook, each with its own ports and temp dir, checks
the cluster's health, and runs the entry point (a probe standing in for main_ppo) that sees two nodes and runs a
task on each. A SIGUSR2 sent to the launcher alone reaches the probe, whose exit code (75) becomes the launcher's,
and no Ray process of the job outlives it. A node whose ``ray start`` exits fails the launch at once; on the GPU
machine (``-m gpu``) both nodes offer its GPU and a task on each sees it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import pytest

from stages.lm.verl.ray_launch import write_launcher
from tests.grpo_trainer.helpers import REPO

RUNNER = """#!/usr/bin/env bash
# Stands in for `srun --overlap -w NODE`: run the command on this machine, with only PATH and HOME kept
node=$1; shift
echo "$node" >> "$RUNNER_LOG"
exec env -i PATH="$PATH" HOME="$HOME" "$@"
"""


def _read_until_probe(proc: subprocess.Popen, lines: list[str], timeout: float) -> dict | None:
    found: dict = {}

    def read() -> None:
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("PROBE "):
                found.update(json.loads(line[len("PROBE "):]))
                return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout)
    return found or None


def _job_processes(marker: str) -> str:
    res = subprocess.run(["pgrep", "-af", marker], capture_output=True, text=True, check=False)
    return "\n".join(line for line in res.stdout.splitlines() if "pgrep" not in line)


def _start(tmp_path: Path, gpus: int, entry: str, args: list[str], **extra: str):
    """Write the launcher for two nodes (this host and a made-up one) and start it; the per-node hook runs the
    second node here. Returns the process, the port and the job's Ray temp root."""
    host = socket.gethostname().split(".")[0]
    port = 21000 + (os.getpid() % 400) * 10  # a block of its own: GCS, per-node ports, 2 x 400 worker ports
    job_id = f"t{uuid.uuid4().hex[:8]}"
    runner = tmp_path / "run-on-node.sh"
    runner.write_text(RUNNER)
    runner.chmod(0o755)
    script = write_launcher(tmp_path / "launch.sh", 2, gpus, port, sys.executable, entry=entry)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "RAY_"))}
    pythonpath = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    env.update(PYTHONPATH=pythonpath, SLURM_JOB_NODELIST=f"{host},fake-node-2", SLURM_JOB_ID=job_id,
               SLURM_CPUS_PER_TASK="1", FLLM_NODE_RUNNER=str(runner), RUNNER_LOG=str(tmp_path / "runner.log"),
               FLLM_RAY_JOIN_TIMEOUT_S="120")
    env.update(extra)
    proc = subprocess.Popen(["bash", str(script), *args], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    return proc, port, Path(f"/tmp/fllm-ray-{job_id}")  # the launcher's default temp root for this "job"


def _stop(proc: subprocess.Popen, ray_tmp: Path) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    shutil.rmtree(ray_tmp, ignore_errors=True)


def test_two_ray_nodes_through_the_launcher(tmp_path):
    pytest.importorskip("ray")
    run_id = f"two-nodes-{uuid.uuid4().hex[:8]}"
    proc, port, ray_tmp = _start(tmp_path, 0, "tests.grpo_trainer.ray_probe", ["a='b c'", "k=v"], WANDB_RUN_ID=run_id,
                                 PROBE_ENV="WANDB_RUN_ID", PROBE_WAIT="1")
    lines: list[str] = []
    try:
        probe = _read_until_probe(proc, lines, timeout=180)
        assert probe, "no probe report:\n" + "".join(lines)[-4000:]
        assert probe["nodes"] == 2 and probe["args"] == ["a='b c'", "k=v"]
        # each node ran a task, and the second node's worker saw the variable the launcher passed explicitly
        assert sorted(t["node_id"] for t in probe["tasks"]) == sorted(probe["node_ids"])
        assert [t["env"] for t in probe["tasks"]] == [run_id, run_id]
        # fixed ports and one temp dir per node, as the launcher assigned them
        by_port = {ports[0]: (ports[1], probe["sockets"][nid]) for nid, ports in probe["ports"].items()}
        assert by_port.keys() == {port + 10, port + 20}
        for i, node_port in enumerate((port + 10, port + 20)):
            om_port, sock = by_port[node_port]
            assert om_port == node_port + 1 and sock.startswith(f"{ray_tmp}/n{i}/session_") and len(sock) <= 107
        assert (tmp_path / "runner.log").read_text() == "fake-node-2\n"
        assert "ray_health: " in "".join(lines)  # the health check ran before the entry point

        os.kill(proc.pid, signal.SIGUSR2)  # the launcher only (not its group): it must forward to the entry point
        rc = proc.wait(timeout=120)
        lines += proc.stdout.readlines()
        assert rc == 75, "".join(lines)[-4000:]
        assert "after SIGUSR2" in "".join(lines)
        assert _job_processes(str(ray_tmp)) == "", "the launcher left Ray processes running"
    finally:
        _stop(proc, ray_tmp)


def test_a_node_that_cannot_start_ray_fails_the_launch_at_once(tmp_path):
    """The second node's `ray start` exits at once (here: the node runner fails): the health check says which node,
    without waiting for the join timeout, and the head it started is stopped."""
    pytest.importorskip("ray")
    proc, _, ray_tmp = _start(tmp_path, 0, "tests.grpo_trainer.ray_probe", [], FLLM_NODE_RUNNER="false",
                              FLLM_RAY_JOIN_TIMEOUT_S="600")
    try:
        output, _ = proc.communicate(timeout=180)
        assert proc.returncode == 1, output[-4000:]
        assert "`ray start` of worker fake-node-2 exited" in output and "the Ray cluster is not healthy" in output
        assert "PROBE" not in output
        assert _job_processes(str(ray_tmp)) == "", "the launcher left its Ray head running"
    finally:
        _stop(proc, ray_tmp)


@pytest.mark.gpu
def test_two_ray_nodes_on_a_gpu_machine(tmp_path):
    """On the GPU machine: both Ray nodes offer its first GPU, and a task on each node sees it through torch
    (the smoke job's Ray check, ``ray_health --cuda``, as the entry point)."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("ray")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU")
    out = tmp_path / "ray.json"
    proc, _, ray_tmp = _start(tmp_path, 1, "stages.lm.verl.ray_health",
                              ["--nodes", "2", "--gpus-per-node", "1", "--cuda", "--json-out", str(out)],
                              CUDA_VISIBLE_DEVICES="0")
    try:
        output, _ = proc.communicate(timeout=400)
        assert proc.returncode == 0, output[-4000:]
        result = json.loads(out.read_text())
        assert result["ok"] and [(n["gpus"], n["cuda_devices"]) for n in result["nodes"]] == [(1, 1), (1, 1)]
        assert _job_processes(str(ray_tmp)) == ""
    finally:
        _stop(proc, ray_tmp)
