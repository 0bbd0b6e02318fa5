"""The verl engine of pi-distill around the trainer: which allocations a manifest may ask for (the native engine's
one-GPU limit, the verl engine's batch rules and verl's own config checks, through ``pi-distill check``), the prompt
files verl reads (split exactly as the native engine splits, read back by verl's own RL dataset, graded by the reward
file grpo-trainer uses), and verl's logs turned into the stage's metric names. The phase files' PI runs on verl with
their GPUs are in ``test_verl_study.py``."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from tests.pi_distill.conftest import TINY, deep_merge

pytest.importorskip("verl")


# a step a few GPUs can split: 32 responses, one PPO mini-batch, micro-batches of 2 rows
VERL_OK = {"precision": {"bf16": True, "activation_checkpointing": True}, "prompts_per_step": 8, "group_size": 4,
           "mini_batch_size": None, "verl": {"micro_batch_size_per_gpu": 2, "log_prob_micro_batch_size_per_gpu": 2}}


def manifest(fx, tmp, *, engine: str, gpus: int, nodes: int = 1, **params) -> str:
    params = deep_merge(VERL_OK, params) if engine == "verl" else params
    doc = {"schema": "forgetting-llms/manifest/v1", "stage": "pi-distill", "run_id": f"t.pi.{engine}.{nodes}x{gpus}",
           "spec": {"inputs": {"model": {"uri": str(fx / "tiny-qwen3"), "kind": "hf_model"},
                               "prompts": {"uri": str(fx / "prompts" / "gsm8k.parquet"), "kind": "rl_prompts"}},
                    "params": deep_merge(TINY, params), "output_dir": str(tmp / "out"),
                    "resources": {"nodes": nodes, "gpus_per_node": gpus, "cpus_per_task": 8},
                    "runtime": {"seed": 0, "engine": engine}}}
    return json.dumps(doc)


def check(doc: str) -> dict:
    from stages.pi_distill.cli import main

    res = CliRunner().invoke(main, ["check", "--json", "--manifest", "-"], input=doc)
    return json.loads(res.output.strip().splitlines()[-1])



@pytest.mark.parametrize("nodes,gpus", [(1, 2), (2, 4)])
def test_verl_runs_on_several_gpus_and_nodes(fx, tmp_path, nodes, gpus):
    res = check(manifest(fx, tmp_path, engine="verl", gpus=gpus, nodes=nodes))
    assert res["ok"], res
    assert not (tmp_path / "out").exists()


def test_the_native_engine_still_refuses_several_gpus_and_names_verl(fx, tmp_path):
    res = check(manifest(fx, tmp_path, engine="native", gpus=2))
    assert not res["ok"] and "not implemented yet" in res["problem"] and "engine verl" in res["problem"]


def test_verl_refuses_what_it_cannot_run_before_anything_is_written(fx, tmp_path):
    res = check(manifest(fx, tmp_path, engine="verl", gpus=3))  # 32 responses over 3 GPUs
    assert not res["ok"] and "divisible by the 3 GPUs" in res["problem"], res
    res = check(manifest(fx, tmp_path, engine="verl", gpus=1, verl={"extra_overrides": ["data.nope=1"]}))
    assert not res["ok"] and "verl rejected the overrides" in res["problem"] and "data.nope" in res["problem"], res
    res = check(manifest(fx, tmp_path, engine="verl", gpus=0))
    assert not res["ok"] and "needs GPUs" in res["problem"]
    assert not (tmp_path / "out").exists()


def test_prompt_files_split_as_native_and_read_by_verls_dataset(fx, tmp_path):
    import pandas as pd
    from transformers import AutoTokenizer
    from verl.trainer.ppo.utils import create_rl_dataset

    from stages.envs.verl_reward import compute_score
    from stages.lm.verl.config import compose_ppo
    from stages.lm.verl.ppo_overrides import VerlJob
    from stages.pi_distill.params import PiDistillParams
    from stages.pi_distill.prompts import read_prompts
    from stages.pi_distill.rollout import encode
    from stages.pi_distill.state import heldout_split
    from stages.pi_distill.verl_data import OTHER_PROMPT, write_verl_data
    from stages.pi_distill.verl_overrides import build_overrides

    tok = AutoTokenizer.from_pretrained(str(fx / "tiny-qwen3"), local_files_only=True)
    rows = read_prompts(fx / "prompts" / "gsm8k.parquet", "reference_or_answer", "v1")
    p = PiDistillParams(prompts_per_step=4, heldout_fraction=0.1, student_eval_prompts=2, max_prompt_length=300)
    data = write_verl_data(rows, tok, p, False, tmp_path / "data")
    encoded, over = encode(rows, tok, False, 300)
    train_pos, held_pos = heldout_split(len(encoded), 0.1, 4)
    assert over > 0 and data.over_length == over  # long teacher prompts are left out, as natively
    assert (data.train_rows, data.heldout_rows) == (len(train_pos), len(held_pos)) and len(held_pos) >= 2
    assert data.eval_rows == 2  # student_eval_prompts of them
    train = pd.read_parquet(data.train)
    assert [int(i["index"]) for i in train["extra_info"]] == [encoded[i].row.index for i in train_pos]
    first = encoded[train_pos[0]].row
    assert [dict(m) for m in train["prompt"][0]] == first.teacher  # π-Distill samples from the teacher's view
    assert json.loads(train["extra_info"][0][OTHER_PROMPT]) == first.messages
    val = pd.read_parquet(data.val)
    assert [dict(m) for m in val["prompt"][0]] == encoded[held_pos[0]].row.messages  # the student, no PI

    quick = p.model_copy(update={"verl": p.verl.model_copy(update={"extra_overrides": [
        "data.filter_overlong_prompts=false"]})})  # the rows are short already; the filter spawns workers
    cfg = compose_ppo(build_overrides(quick, VerlJob(model_path=str(fx / "tiny-qwen3"), train_files=str(data.train),
                                                 val_files=str(data.val), output_dir=str(tmp_path),
                                                 reward_path="/r.py")))
    dataset = create_rl_dataset(str(data.train), cfg.data, tok, None, is_train=True)
    item = dataset[0]
    assert len(dataset) == data.train_rows and list(item["raw_prompt"]) == first.teacher
    assert json.loads(item["extra_info"][OTHER_PROMPT]) == first.messages
    truth = train["reward_model"][0]["ground_truth"]
    answer = json.loads(truth)["answer"] if truth.startswith("{") else truth
    assert compute_score(train["data_source"][0], f"so \\boxed{{{answer}}}", truth)["score"] == 1.0

    opsd = write_verl_data(rows, tok, p.model_copy(update={"variant": "opsd"}), False, tmp_path / "opsd")
    row = pd.read_parquet(opsd.train).iloc[0]
    assert [dict(m) for m in row["prompt"]] == first.messages  # OPSD samples from the student's view
    assert json.loads(row["extra_info"][OTHER_PROMPT]) == first.teacher


def test_verl_logs_become_the_stages_metrics(tmp_path, monkeypatch):
    from verl.utils.tracking import FileLogger

    from stages.pi_distill.metrics import summarize
    from stages.pi_distill.verl_metrics import verl_records, verl_rollouts

    logs = []
    for attempt, steps in ((1, (1, 2)), (2, (2, 3))):  # attempt 2 redoes step 2 after resuming from step 1
        path = tmp_path / f"metrics-attempt-{attempt}.jsonl"
        monkeypatch.setenv("VERL_FILE_LOGGER_PATH", str(path))
        logger = FileLogger("p", "e")
        for step in steps:
            logger.log({"critic/score/mean": 0.1 * step + attempt, "actor/pg_loss": -0.01 * step,
                        "val-core/math:GSM8K/reward/mean@1": 0.2, "val-core/qa:NaturalQuestions/reward/mean@1": 0.4,
                        "pi_distill/kl_teacher_student": 0.3 * step, "pi_distill/student_loss": 0.05}, step=step)
        logger.finish() if hasattr(logger, "finish") else None
        logs.append(path)
    records = verl_records(logs, "pi-distill")
    assert [r["step"] for r in records] == [1, 2, 3]
    assert records[1]["teacher_reward"] == pytest.approx(2.2)  # attempt 2's step 2 wins
    assert records[0]["student_reward"] == pytest.approx(0.3) and records[2]["kl_teacher_student"] == pytest.approx(0.9)
    assert records[0]["loss"] == pytest.approx(-0.01) and records[0]["student_loss"] == pytest.approx(0.05)
    summary = summarize(records)
    assert summary["steps"] == 3 and summary["teacher_reward_last"] is not None
    # three steps: first and last are one step each, not the same three-step mean (seen on the GPU run)
    assert summary["teacher_reward_first"] == pytest.approx(records[0]["teacher_reward"])
    assert summary["teacher_reward_last"] == pytest.approx(records[2]["teacher_reward"])
    assert "teacher_reward" not in verl_records(logs, "opsd")[0]  # OPSD's rollouts are the student's
    dumps = tmp_path / "rollouts"
    dumps.mkdir()
    (dumps / "1.jsonl").write_text(json.dumps({"input": "q", "output": "a", "gts": "1", "score": 1.0}) + "\n")
    assert verl_rollouts(dumps, 10, "teacher") == [{"step": 1, "view": "teacher", "prompt": "q", "response": "a",
                                                    "ground_truth": "1", "reward": 1.0, "correct": None}]
