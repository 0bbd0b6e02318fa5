"""Preemption between phases: SIGTERM makes the run write ``preempted`` and exit 75; the rerun skips the phases it
finished (their records and numbers come from ``checkpoints/progress.json``) and succeeds."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.evaluator.conftest import manifest

REPO = Path(__file__).resolve().parents[2]


def start(m: Path) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(REPO), HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1")
    return subprocess.Popen([sys.executable, "-m", "stages.evaluator.cli", "--manifest", str(m)], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.slow
def test_preempted_run_resumes_after_its_last_phase(tmp_path, tiny_model_dir, benchmarks_dir):
    out = tmp_path / "out"
    inputs = {"model": (tiny_model_dir, "hf_model"), "benchmarks": (benchmarks_dir, "benchmark_data")}
    params = {"suite": "policy", "tasks": ["fllm_nq_mc", "fllm_nq_open"], "limit": 3, "diversity_prompts": 2,
              "diversity_samples": 2, "greedy": {"temperature": 0.0, "max_new_tokens": 8},
              "diversity_sampling": {"temperature": 1.0, "max_new_tokens": 8}}
    m = manifest(tmp_path / "m.json", "tiny.resume", inputs, params, out)
    proc = start(m)
    progress = out / "checkpoints" / "progress.json"
    deadline = time.monotonic() + 600
    while not progress.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert progress.exists(), proc.communicate()[1][-2000:]
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 75, err[-2000:]
    record = json.loads((out / "manifest.json").read_text())
    assert record["status"]["state"] == "preempted"
    done_before = json.loads(progress.read_text())["done"]
    assert "lm_eval" in done_before and "calibration_lengths" not in done_before

    again = start(m)
    _, err = again.communicate(timeout=600)
    assert again.returncode == 0, err[-2000:]
    assert "phase lm_eval already done" in err
    record = json.loads((out / "manifest.json").read_text())
    assert record["status"]["state"] == "succeeded" and record["status"]["attempt"] == 2
    results = json.loads((out / "results.json").read_text())
    assert {s["task"] for s in results["scores"]} == {"fllm_nq_mc", "fllm_nq_open"}  # kept from attempt 1
    assert results["policy"]["ece"] is not None and results["calibration"]
