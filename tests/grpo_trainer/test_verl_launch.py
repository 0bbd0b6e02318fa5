"""The stage's control of a running verl job: the launcher runs in its own process group, a stop signal reaches
the whole group, the stage waits for it and reports the last checkpoint (verl has no save-on-signal hook), and a
failing job is a failure naming its log. A stand-in entry point replaces main_ppo (which needs GPUs and vLLM)."""

from __future__ import annotations

import signal
import threading
import time

import pytest

from stages.core.errors import Preempted
from stages.core.signals import StopFlag
from stages.core.stage import ResolvedInput, RunContext
from stages.grpo_trainer.stage import STAGE
from stages.grpo_trainer.verl_overrides import VerlJob
from stages.grpo_trainer.verl_run import launch
from tests.grpo_trainer.helpers import REPO

pytest.importorskip("verl")


def context(tmp_path, stop: StopFlag) -> RunContext:
    doc = {"schema": "forgetting-llms/manifest/v1", "stage": "grpo-trainer", "run_id": "launch.test",
           "spec": {"output_dir": str(tmp_path / "out"), "runtime": {"engine": "verl"},
                    "resources": {"gpus_per_node": 1}}}
    manifest = STAGE.manifest_cls.model_validate(doc)
    manifest.status.attempt = 1
    (tmp_path / "out").mkdir()
    inputs: dict[str, ResolvedInput] = {}
    return RunContext(STAGE, manifest, inputs, stop, lambda: None, resuming=False)


def job(tmp_path) -> VerlJob:
    return VerlJob(model_path="/m", train_files="/t.parquet", output_dir=str(tmp_path / "out"),
                   reward_path="/r.py", total_steps=4, env_vars={"PYTHONPATH": str(REPO)})


def test_stop_signal_stops_the_job_and_reports_the_last_checkpoint(tmp_path, monkeypatch):
    monkeypatch.setenv("FLLM_VERL_ENTRY", "tests.grpo_trainer.fake_verl_entry")
    monkeypatch.setenv("FAKE_VERL", "sleep")
    stop = StopFlag()
    ctx = context(tmp_path, stop)
    ckpt = ctx.checkpoint_dir
    (ckpt / "global_step_2" / "actor").mkdir(parents=True)
    (ckpt / "latest_checkpointed_iteration.txt").write_text("2")
    log = tmp_path / "out" / "logs" / "verl-attempt-1.log"

    def preempt_when_running() -> None:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and "step 1 logged" not in (log.read_text() if log.exists() else ""):
            time.sleep(0.2)
        stop._handle(signal.SIGTERM, None)  # what the lifecycle's handler does: flag + forward to the group

    threading.Thread(target=preempt_when_running, daemon=True).start()
    started = time.monotonic()
    with pytest.raises(Preempted) as info:
        launch(ctx, job(tmp_path), ["a=1"])
    assert info.value.checkpoint.endswith("global_step_2")
    assert ctx.manifest.status.last_checkpoint.endswith("global_step_2")
    assert time.monotonic() - started < 240
    assert (tmp_path / "out" / "verl" / "metrics-attempt-1.jsonl").read_text().startswith('{"step":1')
    assert (tmp_path / "out" / "verl" / "launch.sh").is_file()


def test_a_failing_job_is_a_failure_naming_its_log(tmp_path, monkeypatch):
    monkeypatch.setenv("FLLM_VERL_ENTRY", "tests.grpo_trainer.fake_verl_entry")
    monkeypatch.setenv("FAKE_VERL", "fail")
    ctx = context(tmp_path, StopFlag())
    with pytest.raises(RuntimeError, match="exited with code 3; see .*verl-attempt-1.log"):
        launch(ctx, job(tmp_path), ["a=1"])
    assert "failing on purpose" in (tmp_path / "out" / "logs" / "verl-attempt-1.log").read_text()
