"""bench/gpu/multi_gpu.py's --cpu smoke run: the steps a multi-GPU lease runs (issue 26) work end to end with the tiny
model on two gloo ranks, so the lease is spent measuring, not debugging. Figures are not asserted; what must hold on
any hardware is: two ranks train what one trains (same per-step losses on the same global batches), a SIGUSR2 stop
exits 75 and the resumed run ends where the uninterrupted one did, and native SFT runs with and without optimizer
offload."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.fixtures.tiny_model import build_tiny_model
from tests.sft_trainer.conftest import REPO

pytestmark = pytest.mark.slow


def run(step: str, tmp_path, *extra: str) -> dict:
    build_tiny_model(REPO / ".fixtures" / "tiny-qwen3")
    cmd = [sys.executable, "bench/gpu/multi_gpu.py", step, "--cpu", "--gpus", "2", "--data", ".fixtures",
           "--work", str(tmp_path / "work"), "--out", str(tmp_path / "out"), "--batch", "4", "--micro-tokens", "2048",
           *extra]
    subprocess.run(cmd, cwd=REPO, check=True, capture_output=True, timeout=1200)
    return json.loads((tmp_path / "out" / f"multi-{step}.json").read_text())


def test_spin_on_one_and_two_ranks_then_stopped_and_resumed(tmp_path):
    # 24 prompts in batches of 4: six steps, the stop after the first, so the signal lands mid-training
    got = run("spin", tmp_path, "--prompts", "24", "--new-tokens", "16", "--stop-at", "1")
    assert "error" not in got, got
    one, two = got["runs"]["1gpu"], got["runs"]["2gpu"]
    assert one["rc"] == two["rc"] == 0 and len(one["losses"]) == len(two["losses"]) == 6
    assert got["max_relative_loss_difference"] < 1e-4  # fp32 on the CPU: reduction order only
    stop = got["stop_resume"]
    assert stop["first_rc"] == 75 and stop["resume_rc"] == 0 and stop["status"]["attempt"] == 2
    assert stop["max_relative_loss_difference_to_uninterrupted"] < 1e-6


def test_native_sft_with_and_without_optimizer_offload(tmp_path):
    got = run("sft", tmp_path, "--sft-steps", "3")
    for arm in ("resident", "offload"):
        assert got[arm]["rc"] == 0 and len(got[arm]["losses"]) == 3, got[arm].get("log_tail")
    assert got["resident"]["losses"] == got["offload"]["losses"]  # on a CPU the switch moves nothing
