"""Exact resume: a run killed mid-way (SIGKILL) or preempted (should_stop) ends with the same weights as an
uninterrupted run with the same seed, and checkpoints appear atomically."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from stages.lm.engine import read_metrics
from stages.lm.engine.checkpoint import list_checkpoints
from tests.lm.conftest import train_reference
from tests.lm.helpers import REPO, SCRIPTS, max_weight_diff


def run_in_process(model_dir, run_dir, should_stop=None):
    return train_reference(model_dir, run_dir, should_stop=should_stop)


def test_killed_run_resumes_to_the_same_weights(tiny_model_dir, reference_run, tmp_path):
    run_dir = tmp_path / "killed"
    cmd = [sys.executable, str(SCRIPTS / "train_sft_tiny.py"), str(tiny_model_dir), str(run_dir),
           "--checkpoint-every", "2", "--slow", "0.5"]
    proc = subprocess.Popen(cmd, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 600
        while not (run_dir / "checkpoints" / "step-00000004").exists():
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "no checkpoint appeared"
            time.sleep(0.1)
        proc.send_signal(signal.SIGKILL)  # no chance to clean up: only atomic writes survive
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    steps = [int(p.name.split("-")[1]) for p in list_checkpoints(run_dir / "checkpoints")]
    assert steps and all(s % 2 == 0 and s < 12 for s in steps), steps
    result = run_in_process(tiny_model_dir, run_dir)
    assert result.status == "completed" and result.step == 12
    assert max_weight_diff(run_dir / "export", reference_run.export) < 1e-6
    assert [r["loss"] for r in read_metrics(run_dir / "metrics.jsonl")] == pytest.approx(
        [r["loss"] for r in read_metrics(reference_run.run_dir / "metrics.jsonl")], abs=1e-5)


def test_preempted_run_checkpoints_and_resumes_exactly(tiny_model_dir, reference_run, tmp_path):
    calls = {"n": 0}

    def stop_after_five() -> bool:
        calls["n"] += 1
        return calls["n"] > 5  # asked between steps: stop after step 5

    first = run_in_process(tiny_model_dir, tmp_path, should_stop=stop_after_five)
    assert first.status == "preempted" and first.step == 5
    state = json.loads((first.checkpoint / "trainer_state.json").read_text())
    assert state["step"] == 5 and (state["data"]["epoch"], state["data"]["cursor"]) == (0, 20)  # 5 batches of 4
    assert [p.name for p in list_checkpoints(tmp_path / "checkpoints")] == ["step-00000004", "step-00000005"]
    assert not list((tmp_path / "checkpoints").glob(".tmp-*"))
    second = run_in_process(tiny_model_dir, tmp_path)
    assert second.status == "completed" and second.step == 12
    assert max_weight_diff(tmp_path / "export", reference_run.export) < 1e-6
