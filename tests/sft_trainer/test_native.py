"""The same fixture manifest with ``engine: native`` trains through ``stages.lm``: same rows, same step count, the
same metrics shape and outputs as verl; a stop signal checkpoints and the requeued run resumes."""

from __future__ import annotations

import signal
import time
from pathlib import Path

from tests.sft_trainer.conftest import metrics, record, run_stage, sft_manifest, start_stage
from tests.sft_trainer.test_verl_cpu import TOTAL_STEPS, assert_model_loads_and_changed


def native_checkpoints(root: Path) -> list[int]:
    if not root.is_dir():
        return []
    return sorted(int(p.name.split("-")[1]) for p in root.glob("step-*") if (p / "trainer_state.json").is_file())


def test_native_engine_runs_the_fixture_manifest_with_preempt_and_resume(tmp_path, tiny_model_dir, sft_parquet):
    # optimizer_offload reaches the engine (on a CPU it moves nothing: the state already lives in host memory)
    manifest = sft_manifest(tmp_path, tiny_model_dir, sft_parquet, engine="native",
                            params={"native": {"optimizer_offload": True}})
    out = tmp_path / "out"

    proc = start_stage(manifest)
    end = time.time() + 300
    while not native_checkpoints(out / "checkpoints"):
        assert proc.poll() is None, proc.stderr.read()[-3000:]
        assert time.time() < end, "no native checkpoint in time"
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 75, err[-3000:]
    rec = record(out)
    assert rec["status"]["state"] == "preempted" and "SIGTERM" in rec["status"]["message"]
    stopped = native_checkpoints(out / "checkpoints")[-1]
    assert 3 <= stopped < TOTAL_STEPS
    assert rec["status"]["last_checkpoint"].endswith(f"step-{stopped:08d}")

    done = run_stage(manifest)
    assert done.returncode == 0, done.stderr[-3000:]
    rec = record(out)
    assert rec["status"]["state"] == "succeeded" and rec["status"]["attempt"] == 2
    rows = metrics(out)
    assert [r["step"] for r in rows] == list(range(1, TOTAL_STEPS + 1))
    assert rows[-1]["loss"] < rows[0]["loss"] - 0.1
    assert rows[-1]["val_loss"] > 0 and all(r["tokens"] > 0 and r["lr"] > 0 for r in rows)
    summary = rec["summary"]
    assert summary["engine"] == "native" and summary["train_steps"] == TOTAL_STEPS
    assert summary["final_val_loss"] == rows[-1]["val_loss"] and summary["train_rows"] == 36
    assert rec["provenance"]["engine_config"]["train_config"]["global_batch_groups"] == 4
    assert rec["provenance"]["engine_config"]["train_config"]["optimizer_offload"] is True
    assert set(rec["outputs"]) == {"model", "metrics", "checkpoints"}
    assert_model_loads_and_changed(out / "model", tiny_model_dir)
