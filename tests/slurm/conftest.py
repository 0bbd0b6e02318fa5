"""A real single-node Slurm for the conductor's tests: started once per session by slurm/local/start.sh when no
cluster answers (munge, slurmctld and slurmd from Debian, two fake GPUs), and stopped at the end by stop.sh only if
this session started it. Tests using it are marked ``slurm`` (skipped without sbatch unless FLLM_REQUIRE_SYSTEM=1).
"""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.study.conftest import REPO, counter_env  # noqa: F401  (fixture re-exported for these tests)


def cluster_answers() -> bool:
    try:
        ping = subprocess.run(["scontrol", "ping"], capture_output=True, text=True, timeout=10)
        nodes = subprocess.run(["sinfo", "-h", "-N", "-o", "%T"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return "UP" in ping.stdout and any(s in nodes.stdout for s in ("idle", "mixed", "allocated"))


@pytest.fixture(scope="session")
def slurm_cluster():
    if cluster_answers():
        yield "already running"
        return
    if os.geteuid() != 0:
        pytest.fail("no Slurm cluster answers and starting one (slurm/local/start.sh) needs root")
    start = subprocess.run([str(REPO / "slurm" / "local" / "start.sh")], capture_output=True, text=True, timeout=180)
    if start.returncode != 0:
        pytest.fail(f"slurm/local/start.sh failed:\n{start.stdout}\n{start.stderr}")
    try:
        yield "started"
    finally:
        subprocess.run([str(REPO / "slurm" / "local" / "stop.sh")], capture_output=True, text=True, timeout=120)
