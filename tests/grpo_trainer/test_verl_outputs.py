"""What the stage does with verl's outputs after ``main_ppo`` ends, on files written by verl's own code: the
checkpoint tracker must name the final step (rc 0 alone is never trusted), the final actor is merged by verl's
model merger into a loadable Hugging Face folder, and verl's file-logger records and rollout dumps become our
``metrics.jsonl`` and ``rollouts.jsonl``."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

pytest.importorskip("verl")

from stages.grpo_trainer import metrics as M
from stages.lm.verl.checkpoints import finished_step
from stages.lm.verl.merge import merge_actor


def fake_actor_checkpoint(root: Path, step: int, model_dir: Path) -> Path:
    """An FSDP actor checkpoint in verl's layout (reference §3.6), one rank, from the tiny model's weights."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    actor = root / f"global_step_{step}" / "actor"
    (actor / "huggingface").mkdir(parents=True)
    model = AutoModelForCausalLM.from_pretrained(str(model_dir), local_files_only=True)
    torch.save(model.state_dict(), actor / "model_world_size_1_rank_0.pt")
    (actor / "fsdp_config.json").write_text(json.dumps({"FSDP_version": 2, "world_size": 1}))
    model.config.save_pretrained(actor / "huggingface")
    model.generation_config.save_pretrained(actor / "huggingface")
    AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True).save_pretrained(actor / "huggingface")
    (root / "latest_checkpointed_iteration.txt").write_text(str(step))
    return actor


def test_tracker_must_parse_and_point_at_a_checkpoint(tmp_path):
    assert finished_step(tmp_path) is None
    (tmp_path / "latest_checkpointed_iteration.txt").write_text("1")
    with pytest.raises(RuntimeError, match="global_step_1/actor is missing"):
        finished_step(tmp_path)
    (tmp_path / "global_step_1" / "actor").mkdir(parents=True)
    assert finished_step(tmp_path) == 1
    (tmp_path / "latest_checkpointed_iteration.txt").write_text("1\x00")  # a write cut off by the kill
    with pytest.raises(RuntimeError, match="not a step number"):
        finished_step(tmp_path)


def test_final_actor_is_merged_by_verl_into_a_loadable_model(tmp_path, tiny_model_dir):
    import torch
    from transformers import AutoModelForCausalLM

    ckpt = tmp_path / "checkpoints"
    fake_actor_checkpoint(ckpt, 3, tiny_model_dir)
    assert finished_step(ckpt) == 3
    merge_actor(ckpt, 3, tmp_path / "model", tmp_path / "merge.log")
    merged = AutoModelForCausalLM.from_pretrained(str(tmp_path / "model"), local_files_only=True)
    original = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir), local_files_only=True)
    for (name, a), (_, b) in zip(merged.state_dict().items(), original.state_dict().items()):
        assert torch.allclose(a.float(), b.float(), atol=1e-2), name
    assert (tmp_path / "model" / "tokenizer_config.json").is_file()
    assert not list(tmp_path.glob(".model.merging"))


def test_merger_failure_is_reported(tmp_path):
    (tmp_path / "global_step_2" / "actor").mkdir(parents=True)
    with pytest.raises(RuntimeError, match="model merger failed"):
        merge_actor(tmp_path, 2, tmp_path / "model", tmp_path / "merge.log")
    assert not (tmp_path / "model").exists()


def test_verl_logs_become_our_metrics_and_rollouts(tmp_path, monkeypatch):
    from verl.trainer.ppo.ray_trainer import RayPPOTrainer
    from verl.utils.tracking import FileLogger

    group = 2
    logs = []
    for attempt, steps in ((1, (1, 2)), (2, (2, 3))):  # attempt 2 redoes step 2 after resuming from step 1
        path = tmp_path / f"metrics-attempt-{attempt}.jsonl"
        monkeypatch.setenv("VERL_FILE_LOGGER_PATH", str(path))
        logger = FileLogger("p", "e")
        for s in steps:
            logger.log({"critic/score/mean": 0.1 * s + attempt, "response_length/mean": 10.0 * s,
                        "actor/entropy": 0.5, "actor/pg_clipfrac": 0.01, "perf/throughput": 123.0,
                        "training/filter_groups/evicted_samples": 2.0}, step=s)
        logger.finish()
        logs.append(path)
    dumps = tmp_path / "rollouts"
    for s in (1, 2, 3):
        RayPPOTrainer._write_generations(["q1", "q1", "q2", "q2"], ["a", "b", "c", "d"], ["1", "1", "2", "2"],
                                         [1.0, 0.0, 0.0, float(s > 1)], {"uid": ["u"] * 4}, str(dumps), s)
    recs = M.verl_metrics(logs, dumps, group)
    assert [r["step"] for r in recs] == [1, 2, 3]
    assert recs[1]["reward_mean"] == pytest.approx(2.2)  # the later attempt's record wins
    assert recs[0]["accuracy"] == 0.25 and recs[2]["accuracy"] == 0.5
    assert recs[0]["dropped_groups"] == 1.0 and recs[0]["dropped_group_share"] == pytest.approx(2 / 6)
    assert recs[0]["throughput_tokens_per_s_per_device"] == 123.0 and "kl_ref" not in recs[0]
    rollouts = M.verl_rollouts(dumps, every=2)
    assert sorted({r["step"] for r in rollouts}) == [1, 2]
    assert rollouts[0] == {"step": 1, "uid": "u", "prompt": "q1", "response": "a", "ground_truth": "1", "reward": 1.0}
    assert os.environ["VERL_FILE_LOGGER_PATH"].endswith("attempt-2.jsonl")
