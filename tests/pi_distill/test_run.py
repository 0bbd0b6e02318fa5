"""Short runs on the tiny model and real GSM8K prompts: every step logs the teacher's and the student's rewards and
KL(teacher || student); a rerun is skipped; a run stopped by SIGTERM (as a process, and again before a step's first
update) and resumed ends with exactly the weights and metrics of an uninterrupted run with the same seed; OPSD runs.
"""

from __future__ import annotations

import json
import math

import pytest
import torch
from safetensors.torch import load_file

from stages.pi_distill.stop_points import ENV
from tests.pi_distill.conftest import metrics_of, record_of, run_inproc, run_proc, write_manifest

PER_STEP = ("teacher_reward", "student_reward", "kl_teacher_student", "loss", "teacher_loss", "student_loss",
            "teacher_clip_fraction", "student_clip_fraction", "response_length", "rollout_reward", "grad_norm")
TIMINGS = ("time", "step_time_s", "generation_time_s")


@pytest.fixture(scope="module")
def plain(tmp_path_factory, fixtures_dir):
    tmp = tmp_path_factory.mktemp("pi-plain")
    m = write_manifest(tmp, fixtures_dir, out="plain")
    res = run_inproc(m)
    assert res.exit_code == 0, res.output
    return tmp, m


def _weights(out):
    return load_file(str(out / "model" / "model.safetensors"))


def _deterministic(records):
    return [{k: v for k, v in r.items() if k not in TIMINGS} for r in records]


def test_short_run_logs_both_rewards_and_the_kl_every_step(plain, fixtures_dir):
    tmp, _ = plain
    out = tmp / "plain"
    rec = record_of(out)
    assert rec["status"]["state"] == "succeeded", rec["status"]
    assert set(rec["outputs"]) == {"model", "metrics", "checkpoints", "rollouts"}
    records = metrics_of(out)
    assert [r["step"] for r in records] == [1, 2]
    for r in records:
        for key in PER_STEP:
            assert isinstance(r.get(key), (int, float)) and math.isfinite(r[key]), (key, r)
        assert 0.0 <= r["teacher_reward"] <= 1.0 and 0.0 <= r["student_reward"] <= 1.0
        assert r["optimizer_steps"] == 2 and r["student_eval_prompts"] == 1
        assert r["teacher_prompt_length"] > r["student_prompt_length"]  # the privileged block is in the teacher's
    assert rec["summary"]["steps"] == 2 and rec["summary"]["optimizer_steps"] == 4
    assert rec["summary"]["heldout_prompts"] == 2 and rec["summary"]["prompts_kept"] == 32
    rollouts = [json.loads(line) for line in (out / "rollouts.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rollouts] == [1] * 4 + [2] * 4 and {r["view"] for r in rollouts} == {"teacher"}
    state = json.loads((out / "checkpoints" / "pi_distill_state.json").read_text())
    assert state["step"] == 2 and state["optimizer_steps"] == 4 and (out / "checkpoints" / state["checkpoint"]).is_dir()
    start = load_file(str(fixtures_dir / "tiny-qwen3" / "model.safetensors"))
    trained = _weights(out)
    assert any(not torch.equal(start[k], trained[k]) for k in start), "training left every weight unchanged"


def test_rerun_with_the_same_spec_is_skipped(plain):
    _, m = plain
    res = run_inproc(m)
    assert res.exit_code == 0 and "skipped" in res.output, res.output


@pytest.mark.slow  # three attempts, one a fresh process: about a minute on a busy 2-core machine
def test_stop_and_resume_gives_the_uninterrupted_result(plain, tmp_path, fixtures_dir, monkeypatch):
    m = write_manifest(tmp_path, fixtures_dir, out="plain")  # same spec (and run id) as the plain run
    out = tmp_path / "plain"
    first = run_proc(m, env={ENV: "step:1"})  # a real process, SIGTERM through the lifecycle's handler
    assert first.returncode == 75, first.stderr[-3000:]
    rec = record_of(out)
    assert rec["status"]["state"] == "preempted" and rec["status"]["last_checkpoint"].endswith("step-00000002")
    assert [r["step"] for r in metrics_of(out)] == [1]

    monkeypatch.setenv(ENV, "update:2")  # stopped again after step 2 sampled, before its first optimizer step
    second = run_inproc(m)
    assert second.exit_code == 75, second.output
    assert [r["step"] for r in metrics_of(out)] == [1]
    monkeypatch.delenv(ENV)

    third = run_inproc(m)
    assert third.exit_code == 0, third.output
    rec = record_of(out)
    assert rec["status"]["state"] == "succeeded" and rec["status"]["attempt"] == 3
    expected = _weights(plain[0] / "plain")
    got = _weights(out)
    assert expected.keys() == got.keys()
    assert all(torch.equal(expected[k], got[k]) for k in expected), "resumed weights differ from the plain run"
    assert _deterministic(metrics_of(out)) == _deterministic(metrics_of(plain[0] / "plain"))


def test_opsd_variant_trains_the_student_on_its_own_samples(tmp_path, fixtures_dir):
    m = write_manifest(tmp_path, fixtures_dir, variant="opsd", max_steps=1)
    res = run_inproc(m)
    assert res.exit_code == 0, res.output
    (r,) = metrics_of(tmp_path / "out")
    for key in ("teacher_reward", "student_reward", "kl_teacher_student", "kl_student_teacher", "student_loss",
                "student_clip_fraction", "loss"):
        assert isinstance(r.get(key), (int, float)) and math.isfinite(r[key]), (key, r)
    assert "teacher_loss" not in r and r["optimizer_steps"] == 2
    rollouts = [json.loads(line) for line in (tmp_path / "out" / "rollouts.jsonl").read_text().splitlines()]
    assert {x["view"] for x in rollouts} == {"student"}
