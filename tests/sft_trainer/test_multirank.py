"""Two data-parallel ranks (gloo on the CPU, as two GPUs would be): verl trains through torchrun with the stage's
batch arithmetic, and the native engine's workers (reducing gradients once per step, ``native.grad_sync``)
checkpoint on SIGUSR2 through torchrun (no orphaned worker is left behind) and resume. Slow: several torchrun launches of two processes."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from stages.lm.verl.checkpoints import tracked_step
from stages.lm.verl.config import verl_installed
from tests.sft_trainer.conftest import metrics, record, run_stage, sft_manifest, start_stage
from tests.sft_trainer.test_native import native_checkpoints
from tests.sft_trainer.test_verl_cpu import TOTAL_STEPS

pytestmark = pytest.mark.slow


def processes_mentioning(text: str) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if text in (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"):
                    found.append(int(proc.name))
            except OSError:
                continue
    return found


@pytest.mark.skipif(not verl_installed(), reason="verl is not installed")
def test_verl_on_two_ranks(tmp_path, tiny_model_dir, sft_parquet):
    m = sft_manifest(tmp_path, tiny_model_dir, sft_parquet, engine="verl", resources={"gpus_per_node": 2})
    r = run_stage(m)
    assert r.returncode == 0, r.stderr[-3000:]
    out = tmp_path / "out"
    rec = record(out)
    assert rec["provenance"]["engine_config"]["world"] == {"nodes": 1, "ranks_per_node": 2, "cpu": True}
    assert "--nproc_per_node=2" in rec["provenance"]["engine_config"]["command"]
    assert sorted(p.name for p in (out / "checkpoints" / f"global_step_{TOTAL_STEPS}").glob("model_world_size_2_*"))
    rows = metrics(out)
    assert len(rows) == TOTAL_STEPS and rows[-1]["loss"] < rows[0]["loss"] - 0.1
    assert (out / "model" / "model.safetensors").is_file()


def test_native_on_two_ranks_checkpoints_on_sigusr2_and_resumes(tmp_path, tiny_model_dir, sft_parquet):
    m = sft_manifest(tmp_path, tiny_model_dir, sft_parquet, engine="native", resources={"gpus_per_node": 2},
                     params={"native": {"grad_sync": "last_micro_batch"}})
    out = tmp_path / "out"
    proc = start_stage(m)
    end = time.time() + 300
    while not native_checkpoints(out / "checkpoints"):
        assert proc.poll() is None, proc.stderr.read()[-3000:]
        assert time.time() < end
        time.sleep(0.05)
    seen = native_checkpoints(out / "checkpoints")[-1]
    proc.send_signal(signal.SIGUSR2)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 75, err[-3000:]
    assert processes_mentioning(str(out)) == [], "a worker outlived the preempted stage"
    assert (out / "logs" / "native-job-attempt-1.json.stop").exists(), "the stop reaches the workers by its file"
    stopped = native_checkpoints(out / "checkpoints")[-1]
    assert seen <= stopped < TOTAL_STEPS
    assert record(out)["status"]["last_checkpoint"].endswith(f"step-{stopped:08d}")

    r = run_stage(m)
    assert r.returncode == 0, r.stderr[-3000:]
    rows = metrics(out)
    assert [x["step"] for x in rows] == list(range(1, TOTAL_STEPS + 1))
    assert rows[-1]["loss"] < rows[0]["loss"] - 0.1 and rows[-1]["val_loss"] > 0
    assert tracked_step(out / "checkpoints") is None  # native checkpoints, not verl's
    assert record(out)["provenance"]["engine_config"]["train_config"]["grad_sync"] == "last_micro_batch"
