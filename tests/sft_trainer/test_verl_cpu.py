"""verl's real SFT trainer, run on the CPU through the stage (the CPU platform shim, gloo, one rank): the loss
falls, checkpoints are written, a stop signal preempts (exit 75) and the requeued run resumes from the checkpoint,
the tracker is checked, the merged model loads with transformers, the manifest records the overrides, the resolved
config and verl's version, and an evaluator manifest can name this run's model."""

from __future__ import annotations

import signal
import time
from importlib import metadata
from pathlib import Path

import pytest

from stages.lm.verl.checkpoints import tracked_step
from stages.lm.verl.config import verl_installed
from tests.sft_trainer.conftest import metrics, record, run_stage, sft_manifest, start_stage

pytestmark = pytest.mark.skipif(not verl_installed(), reason="verl is not installed")

TOTAL_STEPS = 9  # 40 rows, 4 held out, batch 4 -> 9 steps; saves at 3 and 6, and the final 9


def wait_for_checkpoint(ckpt: Path, proc, timeout: float = 420) -> int:
    end = time.time() + timeout
    while time.time() < end:
        step = tracked_step(ckpt)
        if step:
            return step
        if proc.poll() is not None:
            raise AssertionError(f"the stage ended before its first checkpoint:\n{proc.stderr.read()[-3000:]}")
        time.sleep(0.1)
    raise AssertionError("no checkpoint in time")


def assert_model_loads_and_changed(model_dir: Path, base_dir: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(str(model_dir), local_files_only=True)
    base = AutoModelForCausalLM.from_pretrained(str(base_dir), local_files_only=True)
    tok = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
    assert tok.chat_template, "the merged folder must keep the chat template"
    ids = tok.apply_chat_template([{"role": "user", "content": "What is 2+2?"}], add_generation_prompt=True,
                                  enable_thinking=False, return_tensors="pt", return_dict=True)["input_ids"]
    with torch.no_grad():
        logits = model(ids).logits
    assert logits.shape[-1] == model.config.vocab_size and torch.isfinite(logits).all()
    w, w0 = model.model.layers[0].mlp.down_proj.weight, base.model.layers[0].mlp.down_proj.weight
    assert not torch.allclose(w.float(), w0.float(), atol=1e-3), "the merged weights are the starting weights"


def test_verl_sft_preempt_resume_merge_and_chain(tmp_path, tiny_model_dir, sft_parquet):
    manifest = sft_manifest(tmp_path, tiny_model_dir, sft_parquet, engine="verl")
    out = tmp_path / "out"
    ckpt = out / "checkpoints"

    proc = start_stage(manifest)
    first = wait_for_checkpoint(ckpt, proc)
    proc.send_signal(signal.SIGUSR2)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 75, err[-3000:]
    rec = record(out)
    assert rec["status"]["state"] == "preempted" and "SIGUSR2" in rec["status"]["message"]
    stopped_at = tracked_step(ckpt)
    assert stopped_at is not None and first <= stopped_at < TOTAL_STEPS and stopped_at % 3 == 0
    assert rec["status"]["last_checkpoint"] == str(ckpt / f"global_step_{stopped_at}")
    assert not (out / "model").exists()

    done = run_stage(manifest)
    assert done.returncode == 0, done.stderr[-3000:]
    rec = record(out)
    assert rec["status"]["state"] == "succeeded" and rec["status"]["attempt"] == 2
    assert tracked_step(ckpt) == TOTAL_STEPS

    rows = metrics(out)
    assert [r["step"] for r in rows] == list(range(1, TOTAL_STEPS + 1))
    resumed = [r["step"] for r in rows if r["attempt"] == 2]
    assert resumed == list(range(stopped_at + 1, TOTAL_STEPS + 1)), "attempt 2 must continue after the checkpoint"
    losses = [r["loss"] for r in rows]
    assert losses[-1] < losses[0] - 0.1, losses
    assert rows[-1]["val_loss"] > 0 and all(r["tokens"] > 0 for r in rows)
    assert rows[0]["lr"] > rows[-2]["lr"] > 0  # cosine decay (verl logs the rate after each step's scheduler step)

    summary = rec["summary"]
    assert summary["engine"] == "verl" and summary["train_steps"] == TOTAL_STEPS
    assert summary["final_train_loss"] < summary["first_train_loss"]
    assert summary["final_val_loss"] == rows[-1]["val_loss"] and summary["tokens_seen"] > 0
    assert summary["train_rows"] == 36 and summary["val_rows"] == 4 and summary["wall_time_s"] > 0

    engine = rec["provenance"]["engine_config"]
    assert engine["verl_version"] == metadata.version("verl")
    assert "data.custom_cls.name=ChatFormatSFTDataset" in engine["overrides"]
    assert "trainer.save_freq=3" in engine["overrides"] and "optim.lr=0.002" in engine["overrides"]
    assert engine["resolved_config"]["optim"]["lr"] == 0.002
    assert engine["resolved_config"]["data"]["enable_thinking_default"] is False
    assert set(rec["outputs"]) == {"model", "metrics", "checkpoints"}
    assert rec["outputs"]["model"]["kind"] == "hf_model" and rec["outputs"]["model"]["digest"].startswith("sha256-dir:")

    assert_model_loads_and_changed(out / "model", tiny_model_dir)

    # the result chains: an evaluator manifest names this run's model by link
    from stages.core.artifacts import ArtifactRef
    from stages.core.inputs import resolve_inputs
    from stages.registry import load_stage

    link = {"model": ArtifactRef.model_validate({"from": f"{out / 'manifest.json'}#outputs.model"})}
    resolved = resolve_inputs(load_stage("evaluator"), link)
    assert resolved["model"].path == out / "model" and resolved["model"].digest == rec["outputs"]["model"]["digest"]
