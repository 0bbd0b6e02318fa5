"""The native engine trains the tiny Qwen3 with GRPO on CPU: on a fixture task the mean reward rises within a dozen
steps, every output is written and recorded; killed with SIGTERM mid-run (through the real lifecycle) and rerun,
it resumes from its checkpoint and ends exactly where the uninterrupted run ends."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest

from tests.grpo_trainer.helpers import manifest, record, run_stage, start_stage
from tests.grpo_trainer.tiny_task import task_prompts, warm_up

STEPS = 12
PARAMS = {
    "group_size": 8,
    "prompts_per_step": 4,
    "mini_batch_size": 4,
    "max_steps": STEPS,
    "max_prompt_length": 64,
    "sampling": {"max_new_tokens": 6},
    "optim": {"lr": 2e-3, "warmup_ratio": 0.0, "schedule": "constant"},
    "save_every_steps": 3,
    "log_rollouts_every_steps": 4,
    "native": {"micro_batch_tokens": 2048, "generation_batch_size": 32},
}


def metrics(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines() if line.strip()]


def mean(xs: list[float]) -> float:
    return sum(xs) / len(xs)


@pytest.fixture(scope="module")
def task(tmp_path_factory, tiny_model_dir):
    root = tmp_path_factory.mktemp("grpo-native")
    return root, warm_up(tiny_model_dir, root / "warm"), task_prompts(root / "prompts.parquet")


@pytest.fixture(scope="module")
def finished(task):
    """One uninterrupted run (shared by the tests below)."""
    root, model, prompts = task
    m = manifest(root, model, prompts, params=PARAMS, out="run", name="run.json")
    res = run_stage(m, timeout=900)
    assert res.returncode == 0, res.stderr[-4000:]
    return root / "run"


def test_reward_rises(finished):
    recs = metrics(finished)
    assert [r["step"] for r in recs] == list(range(1, STEPS + 1))
    first, last = mean([r["reward_mean"] for r in recs[:4]]), mean([r["reward_mean"] for r in recs[-4:]])
    assert last > first + 0.2, [round(r["reward_mean"], 3) for r in recs]
    for key in ("reward_mean", "accuracy", "response_length", "clip_fraction", "dropped_groups",
                "dropped_group_share", "throughput_tokens_per_s_per_device", "step_time_s", "lr", "grad_norm"):
        assert key in recs[-1], key
    assert any("entropy" in r for r in recs) and all("kl_ref" not in r for r in recs)  # no KL by default


def test_outputs_and_record(finished):
    rec = record(finished)
    assert rec["status"]["state"] == "succeeded" and rec["status"]["exit_code"] == 0
    assert set(rec["outputs"]) == {"model", "metrics", "checkpoints", "rollouts"}
    assert rec["summary"]["steps"] == STEPS and rec["summary"]["reward_last"] > rec["summary"]["reward_first"]
    cfg = rec["provenance"]["engine_config"]
    assert cfg["engine"] == "native" and cfg["total_rollout_steps"] == STEPS
    assert cfg["reward_file"].endswith("stages/envs/verl_reward.py")
    assert cfg["train_config"]["lr"] == PARAMS["optim"]["lr"]
    from transformers import AutoModelForCausalLM, AutoTokenizer

    AutoModelForCausalLM.from_pretrained(str(finished / "model"), local_files_only=True)
    AutoTokenizer.from_pretrained(str(finished / "model"), local_files_only=True)
    rollouts = [json.loads(x) for x in (finished / "rollouts.jsonl").read_text().splitlines()]
    assert sorted({r["step"] for r in rollouts}) == [1, 4, 8, 12]
    assert len(rollouts) == 4 * PARAMS["group_size"] * PARAMS["prompts_per_step"]
    assert {"prompt", "response", "reward", "ground_truth", "correct"} <= set(rollouts[0])
    assert any(r["reward"] == 1.0 and "\\boxed{2}" in r["response"] for r in rollouts)
    assert (finished / "checkpoints").is_dir() and any((finished / "checkpoints").iterdir())


def test_rerun_of_a_finished_run_is_skipped(finished):
    res = run_stage(finished.parent / "run.json", timeout=300)
    assert res.returncode == 0 and "skipped" in res.stdout


@pytest.mark.slow
def test_kill_and_resume_ends_where_the_uninterrupted_run_ends(task, finished):
    root, model, prompts = task
    m = manifest(root, model, prompts, params=PARAMS, out="killed", name="killed.json")
    out = root / "killed"
    proc = start_stage(m)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and proc.poll() is None:
        if (out / "metrics.jsonl").exists() and len(metrics(out)) >= 4:
            break
        time.sleep(0.5)
    assert proc.poll() is None, "the run ended before it could be interrupted"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 75, err[-3000:]
    rec = record(out)
    assert rec["status"]["state"] == "preempted" and rec["status"]["last_checkpoint"]
    stopped_at = len(metrics(out))
    assert stopped_at < STEPS

    res = run_stage(m, timeout=900)
    assert res.returncode == 0, res.stderr[-4000:]
    rec = record(out)
    assert rec["status"]["state"] == "succeeded" and rec["status"]["attempt"] == 2
    resumed, reference = metrics(out), metrics(finished)
    assert [r["step"] for r in resumed] == list(range(1, STEPS + 1))
    # the checkpoint holds weights, optimizer, RNG and prompt order: the resumed run repeats the same steps
    for a, b in zip(resumed, reference):
        assert a["reward_mean"] == pytest.approx(b["reward_mean"], abs=1e-9), (a["step"], a, b)
    assert mean([r["reward_mean"] for r in resumed[-4:]]) > mean([r["reward_mean"] for r in resumed[:4]]) + 0.2


def test_kl_ablation_and_several_updates_per_step(task):
    """The KL switch loads the reference and logs KL; mini-batches x ppo_epochs make that many optimizer steps,
    and from the second update on the ratio moves off 1, so clipping can happen."""
    root, model, prompts = task
    params = dict(PARAMS, max_steps=2, kl_coef=0.001, loss_agg="seq-mean-token-mean", ppo_epochs=2,
                  mini_batch_size=2, clip_ratio_high=0.28, drop_zero_variance_groups=False,
                  optim={"lr": 1e-2, "warmup_ratio": 0.0, "schedule": "constant"})
    m = manifest(root, model, prompts, params=params, out="kl", name="kl.json")
    res = run_stage(m, timeout=900)
    assert res.returncode == 0, res.stderr[-4000:]
    recs = metrics(root / "kl")
    assert len(recs) == 2 and all("kl_ref" in r and r["kl_ref"] >= 0 for r in recs)
    assert recs[-1]["kl_ref"] > 0  # the policy moved away from the reference
    engine_steps = (root / "kl" / "native" / "metrics.jsonl").read_text().splitlines()
    assert len(engine_steps) == 2 * 2 * 2  # steps x (prompts_per_step / mini_batch_size) x ppo_epochs
    assert record(root / "kl")["provenance"]["engine_config"]["optimizer_steps"] == 8
