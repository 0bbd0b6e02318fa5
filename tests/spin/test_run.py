"""SPIN end to end on the tiny model: two iterations, the margin growing within each, a skipped rerun, and a run
stopped in every phase (mid-generation, mid-reference scoring, mid-training, between iterations) that resumes to
exactly the pairs and the final weights of an uninterrupted run with the same seed.

The stops are SIGTERMs the process sends itself at named points (``stages.spin.stop_points``), so each lands at a
known place however loaded the machine is; the first one goes to a real ``spin`` process (exit code 75), the rest
through the same lifecycle in-process.
"""

from __future__ import annotations

import math

import pytest
import torch

from tests.spin.conftest import (jsonl, prompt_rows, record_of, resume_until_done, run_inproc, run_proc,
                                 train_steps, weights, where, write_manifest)

STOPS = ["generate:0:0", "score:0:0", "train:0:1", "iteration:0", "generate:1:1", "score:1:2", "train:1:3"]


def test_two_iterations_end_to_end(plain_run, tiny_model_dir):
    out, _ = plain_run
    rec = record_of(out)
    assert rec["status"]["state"] == "succeeded"
    assert set(rec["outputs"]) == {"model", "pairs", "metrics", "iteration_models"}
    assert all(o["digest"].startswith("sha256") for o in rec["outputs"].values())
    for t in (0, 1):
        pairs = jsonl(out / "pairs" / f"iter-{t}.jsonl")
        assert [p["position"] for p in pairs] == [0, 1, 2, 3] and all(p["iteration"] == t for p in pairs)
        assert [p["chosen"] for p in pairs] == [r["extra_info"]["reference_solution"] for r in prompt_rows()]
        assert [p["prompt"] for p in pairs] == [r["prompt"] for r in prompt_rows()]
        assert all(1 <= len(p["rejected_token_ids"]) <= 8 and p["kept"] for p in pairs)
    # iteration 1 trains its own pairs and the previous iteration's, rescored under its own start model
    refs = [jsonl(out / "pairs" / f"iter-{t}.reference.jsonl") for t in (0, 1)]
    assert [r["source_iteration"] for r in refs[0]] == [0] * 4
    assert [r["source_iteration"] for r in refs[1]] == [0] * 4 + [1] * 4
    assert refs[1][0]["ref_logp_chosen"] != refs[0][0]["ref_logp_chosen"]  # iteration 0's model moved
    gen = [r for r in jsonl(out / "metrics.jsonl") if r["phase"] == "generate"]
    assert [g["iteration"] for g in gen] == [0, 1]
    assert all(g["samples"] == 4 and 0.0 <= g["share_correct"] <= 1.0 and g["training_pairs"] > 0 for g in gen)
    assert [r["iteration"] for r in train_steps(out)] == [0, 0, 1, 1, 1, 1]
    summary = rec["summary"]
    assert summary["iterations"] == 2 and summary["train_steps_total"] == 6
    assert summary["correct_sample_policy"] == "keep" and "share_correct_iter1" in summary
    trained, start = weights(out / "model"), weights(tiny_model_dir)
    assert set(start) <= set(trained)
    assert any(not torch.equal(trained[k], start[k]) for k in start)
    first, last = weights(out / "iterations" / "iter-0"), weights(out / "iterations" / "iter-1")
    assert all(torch.equal(last[k], trained[k]) for k in trained)
    assert any(not torch.equal(first[k], trained[k]) for k in trained)
    assert not (out / "checkpoints" / "iter-1").exists()  # engine checkpoints go once the run is done


def test_margin_grows_within_each_iteration(plain_run):
    out, _ = plain_run
    steps = train_steps(out)
    for t in (0, 1):
        it = [r for r in steps if r["iteration"] == t]
        # at the first step policy = reference (the model at the start of the iteration): margin 0, loss log 2
        assert it[0]["loss"] == pytest.approx(math.log(2), abs=1e-4)
        assert it[0]["reward_margin"] == pytest.approx(0.0, abs=1e-4)
        assert it[-1]["reward_margin"] > it[0]["reward_margin"] + 0.1, it
        assert it[-1]["loss"] < math.log(2) - 0.05


def test_rerun_is_skipped(plain_run):
    out, manifest = plain_run
    before = (out / "manifest.json").read_text()
    res = run_inproc(manifest)
    assert res.exit_code == 0 and "skipped" in res.output, res.output
    assert (out / "manifest.json").read_text() == before


def test_stop_in_every_phase_then_resume_matches_the_plain_run(plain_run, tmp_path, tiny_model_dir, spin_prompts):
    plain_out, _ = plain_run
    manifest = write_manifest(tmp_path, tiny_model_dir, spin_prompts)
    out = tmp_path / "out"
    env = {"FLLM_SPIN_SIGNAL_AT": ",".join(STOPS)}
    first = run_proc(manifest, env=env)  # a real process: SIGTERM -> checkpoint -> exit 75 (requeue me)
    assert first.returncode == 75, first.stderr[-3000:]
    assert record_of(out)["status"]["state"] == "preempted"
    phases = [where(out), *resume_until_done(manifest, out, env, len(STOPS) + 1)]
    # every stop landed where it was asked to, one per attempt
    assert phases == [("generate", 0, 1), ("score", 0, 1), ("train", 0, 0), ("generate", 1, 0),
                      ("score", 1, 0), ("score", 1, 3), ("train", 1, 0)], phases
    rec = record_of(out)
    assert rec["status"]["state"] == "succeeded" and rec["status"]["attempt"] == len(STOPS) + 1
    for t in (0, 1):
        for name in (f"iter-{t}.jsonl", f"iter-{t}.reference.jsonl"):
            assert (out / "pairs" / name).read_bytes() == (plain_out / "pairs" / name).read_bytes(), name
    a, b = weights(out / "model"), weights(plain_out / "model")
    assert set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a)
    keys = ("iteration", "step", "loss", "reward_margin", "logp_gap", "grad_norm")
    assert [[r[k] for k in keys] for r in train_steps(out)] == [[r[k] for k in keys] for r in train_steps(plain_out)]
    assert rec["summary"] == record_of(plain_out)["summary"]
    assert set(rec["outputs"]) == {"model", "pairs", "metrics"}
    assert not list((out / "work").glob("start-*")) and not (out / "checkpoints" / "iter-1").exists()

