"""FSDP2 under torchrun (2 CPU processes, gloo) follows the same loss trajectory as one process, whether gradients
are reduced after every micro-batch (the default under torchrun) or once per step (``grad_sync``)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from stages.lm.engine import read_metrics
from tests.lm.helpers import REPO, SCRIPTS, max_weight_diff


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("grad_sync", ["auto", "last_micro_batch"])
def test_two_ranks_match_one_process(tiny_model_dir, reference_run, tmp_path, grad_sync):
    """The script's settings are the reference run's (checkpointing aside, which does not change the trajectory);
    48-token micro-batches give each rank two micro-batches a step, so accumulation across them is exercised."""
    script = str(SCRIPTS / "train_sft_tiny.py")
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", f"--master_port={free_port()}"]
    cmd = [*torchrun, script, str(tiny_model_dir), str(tmp_path / "two"), "--export", str(tmp_path / "export"),
           "--micro-tokens", "48", "--grad-sync", grad_sync]
    multi = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=900, check=False)
    assert multi.returncode == 0, multi.stderr[-3000:]
    one = read_metrics(reference_run.run_dir / "metrics.jsonl")
    two = read_metrics(tmp_path / "two" / "metrics.jsonl")
    assert len(one) == len(two) == 12
    assert [r["loss"] for r in two] == pytest.approx([r["loss"] for r in one], abs=1e-5)
    assert [r["tokens"] for r in two] == [r["tokens"] for r in one]  # the same global batches
    assert {r["micro_batches"] for r in two} == {2}
    assert max_weight_diff(tmp_path / "export", reference_run.export) < 1e-4  # rank 0 gathered the shards
