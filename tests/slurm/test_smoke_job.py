"""The per-cluster smoke job (slurm/smoke/) on CPUs: the all-reduce script under torchrun with gloo over two local
ranks (the same script the job runs with NCCL across nodes), how it reads NCCL's log to tell InfiniBand from a
fall-back to TCP sockets, the submitter turning a cluster profile into sbatch options, and the whole job on the local
single-node Slurm (one node: two gloo ranks, then a one-node Ray cluster through the verl stages' launcher)."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from stages.study.profiles import load_profile

REPO = Path(__file__).resolve().parents[2]
SMOKE = REPO / "slurm" / "smoke"


def _module(name: str):
    spec = importlib.util.spec_from_file_location(f"smoke_{name}", SMOKE / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_gloo_allreduce_over_two_local_ranks(tmp_path):
    out = tmp_path / "allreduce.json"
    res = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nnodes=1", "--nproc-per-node=2",
         f"--master-port={_free_port()}", str(SMOKE / "allreduce.py"), "--out", str(out), "--sizes-mb", "1,4",
         "--iters", "3", "--warmup", "1"],
        capture_output=True, text=True, timeout=180, check=False)
    assert res.returncode == 0, res.stdout + res.stderr
    result = json.loads(out.read_text())
    assert result["ok"] and result["backend"] == "gloo" and result["world_size"] == 2
    assert len(result["ranks"]) == 2 and result["nccl"] is None
    assert [r["size_bytes"] for r in result["results"]] == [2**20, 4 * 2**20]
    for row in result["results"]:
        assert row["seconds"] > 0
        assert row["algbw_gbs"] == pytest.approx(row["size_bytes"] / row["seconds"] / 1e9, rel=1e-2)
        assert row["busbw_gbs"] == pytest.approx(row["algbw_gbs"], rel=1e-2)  # 2(n-1)/n = 1 for two ranks
    assert "allreduce: gloo over 2 rank(s) on 1 host(s)" in res.stdout


def test_nccl_without_gpus_and_without_torchrun_fail_clearly():
    script = str(SMOKE / "allreduce.py")
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE")}
    res = subprocess.run([sys.executable, script], env=env, capture_output=True, text=True, timeout=60, check=False)
    assert res.returncode == 2 and "run it under torchrun" in res.stderr
    res = subprocess.run([sys.executable, script, "--backend", "nccl"], env=dict(env, RANK="0", WORLD_SIZE="1",
                         CUDA_VISIBLE_DEVICES=""), capture_output=True, text=True, timeout=120, check=False)
    assert res.returncode == 2 and "--backend nccl needs CUDA GPUs" in res.stderr


SOCKET_LOG = """\
n1:7:7 [0] NCCL INFO NET/IB : No device found.
n1:7:7 [0] NCCL INFO NET/Socket : Using [0]eth0:10.1.2.3<0>
n1:7:7 [0] NCCL INFO Using network Socket
n1:7:9 [0] NCCL INFO Channel 00/0 : 1[0] -> 0[0] [receive] via NET/Socket/0
n1:7:9 [0] NCCL INFO Channel 00/0 : 0[0] -> 1[0] [send] via NET/Socket/0
"""
IB_LOG = """\
n1:7:7 [0] NCCL INFO NET/IB : Using [0]mlx5_0:1/IB [1]mlx5_1:1/IB ; OOB ib0:10.0.0.1<0>
n1:7:7 [0] NCCL INFO Using network IB
n1:7:9 [0] NCCL INFO Channel 00/0 : 0[0] -> 1[0] [send] via NET/IB/0/GDRDMA
n1:7:9 [0] NCCL INFO Channel 00/0 : 0[0] -> 0[1] via P2P/CUMEM/read
"""


def test_nccl_log_tells_infiniband_from_sockets():
    smoke = _module("allreduce")
    sock = smoke.nccl_network(SOCKET_LOG)
    assert sock["network"] == "Socket" and sock["via"] == ["NET/Socket"]
    assert any("No device found" in note for note in sock["ib_notes"])
    ib = smoke.nccl_network(IB_LOG)
    assert ib["network"] == "IB" and ib["via"] == ["NET/IB", "P2P"] and ib["ib_notes"] == []
    assert smoke.nccl_network("")["network"] is None


def test_sockets_across_hosts_fail_the_check_unless_allowed():
    smoke = _module("allreduce")
    ranks = [{"host": "a", "libibverbs": False, "dev_infiniband": []},
             {"host": "b", "libibverbs": True, "dev_infiniband": ["uverbs0"]}]
    result = {"backend": "nccl", "ranks": ranks, "results": [{"busbw_gbs": 2.0}],
              "nccl": smoke.nccl_network(SOCKET_LOG)}
    code, message = smoke.verdict(result, allow_socket=False, min_busbw=0)
    assert code == 3 and "NET/Socket" in message and "No libibverbs or /dev/infiniband on a;" in message
    assert smoke.verdict(result, allow_socket=True, min_busbw=0)[0] == 0
    assert smoke.verdict(result, allow_socket=True, min_busbw=5.0)[0] == 4
    one_host = dict(result, ranks=[dict(r, host="a") for r in ranks])  # sockets within one host are not a fall-back
    assert smoke.verdict(one_host, allow_socket=False, min_busbw=0)[0] == 0
    assert smoke.verdict(dict(result, nccl=smoke.nccl_network(IB_LOG)), allow_socket=False, min_busbw=0)[0] == 0


def test_submitter_takes_the_cluster_profile(tmp_path, monkeypatch):
    monkeypatch.setenv("SCRATCH", str(tmp_path / "scratch"))
    res = subprocess.run([sys.executable, str(SMOKE / "submit.py"), "narval", "--dry-run"], capture_output=True,
                         text=True, timeout=60, check=False, env=dict(os.environ))
    assert res.returncode == 0, res.stderr
    profile = load_profile("narval")
    cmd = res.stdout.strip().splitlines()[-1].split()
    gpus = profile.max_gpus_per_node or 4
    assert cmd[0] == "sbatch" and cmd[-1] == str(SMOKE / "two-node.sbatch")
    assert f"--account={profile.account}" in cmd and f"--gres={profile.gres}:{gpus}" in cmd
    assert "--nodes=2" in cmd and "--exclusive" in cmd
    sif = os.path.join(os.path.expandvars(profile.images_dir), "grpo-trainer.sif")
    assert f"export FLLM_SMOKE_SIF={sif}" in res.stdout
    assert all(f"module load {m}" in res.stdout for m in profile.modules)
    bad = subprocess.run([sys.executable, str(SMOKE / "submit.py"), "atlantis", "--dry-run"], capture_output=True,
                         text=True, timeout=60, check=False)
    assert bad.returncode == 2 and "unknown cluster 'atlantis'" in bad.stderr


@pytest.mark.slurm
def test_smoke_job_on_the_local_slurm(tmp_path, request, slurm_cluster):
    """One node of the local Slurm: two gloo ranks, Ray through the launcher, the sandbox doctor, as the job runs them."""
    out = tmp_path / "smoke"
    ray_tmp = f"/tmp/fllm-smoke-{os.getpid()}"  # short: Ray's socket paths must fit in 107 bytes
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "RAY_"))}
    env.update(FLLM_SMOKE_RAY_PORT=str(21000 + (os.getpid() % 400) * 10 + 5),
               FLLM_SMOKE_RDZV_PORT=str(_free_port()), FLLM_RAY_TMPDIR=ray_tmp)
    request.addfinalizer(lambda: shutil.rmtree(ray_tmp, ignore_errors=True))
    res = subprocess.run([sys.executable, str(SMOKE / "submit.py"), "local", "--nodes", "1", "--gpus-per-node", "0",
                          "--no-images", "--shared", "--out", str(out)],
                         env=env, capture_output=True, text=True, timeout=60, check=False)
    assert res.returncode == 0, res.stdout + res.stderr
    job = re.search(r"Submitted batch job (\d+)", res.stdout).group(1)
    end = time.time() + 240
    while subprocess.run(["squeue", "-h", "-j", job], capture_output=True, text=True).stdout.strip():
        assert time.time() < end, f"smoke job {job} still queued or running"
        time.sleep(2)
    log = (out / f"slurm-{job}.out").read_text()
    assert "[smoke] all-reduce: ok; Ray: ok; sandbox: ok" in log, log[-4000:]
    doctor = [json.loads(f.read_text()) for f in out.glob("sandbox-*.json")]
    assert len(doctor) == 1 and doctor[0]["contained"] and all(doctor[0]["attacks"].values())
    allreduce = json.loads((out / "allreduce.json").read_text())
    assert allreduce["ok"] and allreduce["world_size"] == 2 and allreduce["backend"] == "gloo"
    ray = json.loads((out / "ray.json").read_text())
    assert ray["ok"] and len(ray["nodes"]) == 1 and ray["nodes"][0]["missing_env"] == []
    assert (out / "launch.sh").is_file()


@pytest.mark.gpu
def test_nccl_allreduce_on_the_gpu_machine(tmp_path):
    """On the GPU machine: the NCCL path of the script (its own INFO log per rank, read back). With two GPUs, P2P and
    shared memory are switched off so that NCCL must use its network between the two ranks, as between nodes: the
    log then names the network (IB or Socket) and the channels go through NET/."""
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU")
    ranks = min(torch.cuda.device_count(), 2)
    extra = {"NCCL_P2P_DISABLE": "1", "NCCL_SHM_DISABLE": "1"} if ranks == 2 else {}
    out = tmp_path / "allreduce.json"
    res = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nnodes=1", f"--nproc-per-node={ranks}",
         f"--master-port={_free_port()}", str(SMOKE / "allreduce.py"), "--out", str(out), "--sizes-mb", "1,64"],
        env={**os.environ, **extra}, capture_output=True, text=True, timeout=300, check=False)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["backend"] == "nccl" and result["nccl_version"] and result["ok"]
    assert all((tmp_path / "nccl" / f"nccl-rank{r}.log").is_file() for r in range(ranks))
    if ranks == 2:
        assert result["nccl"]["network"] in ("IB", "Socket") and any(v.startswith("NET/") for v in result["nccl"]["via"])
        assert result["results"][-1]["busbw_gbs"] > 0
    print(json.dumps({k: result[k] for k in ("nccl_version", "nccl", "results")}))
