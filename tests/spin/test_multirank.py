"""SPIN on two data-parallel ranks (gloo on the CPU, as two GPUs would be): the reference log-probs, training and
export run under torchrun (FSDP2) and give what one process gives (the same pairs; reference log-probs, per-step
losses and weights within float tolerance), a two-rank run stopped in every phase resumes to exactly the two-rank
run that was never stopped, a run resumes on another number of ranks, a scoring chunk or global batch smaller than
the world leaves a rank idle without changing anything, and a stop signal sent to the stage reaches the workers
through torchrun. Only the first test is in `make test`; the others are slow (several torchrun launches each).

Why the weights are compared by relative norm: one process and two ranks sum the same gradient in a different
order, and Adam's normalised update turns a last-bit difference in a near-zero gradient entry into a difference of
up to one learning rate in that single weight; the norm of the difference against the norm of the update stays
tiny, while a wrongly scaled or wrongly sharded gradient makes it of order one.
"""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest

from tests.sft_trainer.test_multirank import processes_mentioning
from tests.spin.conftest import (jsonl, record_of, resume_until_done, run_inproc, run_proc, train_steps, weights,
                                 where, write_manifest)
from tests.spin.test_run import STOPS

TWO = {"gpus_per_node": 2}


def relative_distance(a: Path, b: Path, start: Path) -> float:
    """|| a - b || / || a - start || over every weight."""
    wa, wb, w0 = weights(a), weights(b), weights(start)
    assert set(wa) == set(wb)
    diff = sum(float((wa[k].double() - wb[k].double()).pow(2).sum()) for k in wa) ** 0.5
    moved = sum(float((wa[k].double() - w0[k].double()).pow(2).sum()) for k in w0) ** 0.5
    return diff / moved


def test_two_ranks_give_what_one_process_gives(plain_run, tmp_path, tiny_model_dir, spin_prompts):
    plain_out, _ = plain_run
    manifest = write_manifest(tmp_path, tiny_model_dir, spin_prompts, resources=TWO, iterations=1)
    res = run_inproc(manifest)
    assert res.exit_code == 0, res.output
    out = tmp_path / "out"
    engine = record_of(out)["provenance"]["engine_config"]
    assert engine["world"] == {"nodes": 1, "ranks_per_node": 2, "cpu": True}
    assert "--nproc_per_node=2" in (out / "logs" / "spin-iter0-attempt1.log").read_text()
    assert (out / "pairs" / "iter-0.jsonl").read_bytes() == (plain_out / "pairs" / "iter-0.jsonl").read_bytes()
    refs, plain_refs = (jsonl(o / "pairs" / "iter-0.reference.jsonl") for o in (out, plain_out))
    assert [(r["source_iteration"], r["position"]) for r in refs] == [(0, p) for p in range(4)]
    for a, b in zip(refs, plain_refs, strict=True):
        assert a["ref_logp_chosen"] == pytest.approx(b["ref_logp_chosen"], abs=1e-4)
        assert a["ref_logp_rejected"] == pytest.approx(b["ref_logp_rejected"], abs=1e-4)
    steps, plain_steps = train_steps(out), [r for r in train_steps(plain_out) if r["iteration"] == 0]
    assert [r["step"] for r in steps] == [r["step"] for r in plain_steps] == [1, 2]
    for key in ("loss", "reward_margin", "logp_gap", "grad_norm"):
        assert [r[key] for r in steps] == pytest.approx([r[key] for r in plain_steps], rel=1e-4, abs=1e-5), key
    assert relative_distance(out / "model", plain_out / "iterations" / "iter-0", tiny_model_dir) < 1e-3


@pytest.fixture(scope="module")
def two_rank_run(tmp_path_factory, tiny_model_dir, spin_prompts) -> Path:
    tmp = tmp_path_factory.mktemp("spin-two-ranks")
    res = run_inproc(write_manifest(tmp, tiny_model_dir, spin_prompts, resources=TWO))
    assert res.exit_code == 0, res.output
    return tmp / "out"


@pytest.mark.slow
def test_two_ranks_stopped_in_every_phase_resume_exactly(two_rank_run, plain_run, tmp_path, tiny_model_dir,
                                                         spin_prompts):
    manifest = write_manifest(tmp_path, tiny_model_dir, spin_prompts, resources=TWO)
    out = tmp_path / "out"
    env = {"FLLM_SPIN_SIGNAL_AT": ",".join(STOPS)}
    phases = resume_until_done(manifest, out, env, len(STOPS) + 1)
    assert phases == [("generate", 0, 1), ("score", 0, 1), ("train", 0, 0), ("generate", 1, 0),
                      ("score", 1, 0), ("score", 1, 3), ("train", 1, 0)], phases
    for t in (0, 1):
        for name in (f"iter-{t}.jsonl", f"iter-{t}.reference.jsonl"):
            assert (out / "pairs" / name).read_bytes() == (two_rank_run / "pairs" / name).read_bytes(), name
    assert relative_distance(out / "model", two_rank_run / "model", tiny_model_dir) == 0.0
    keys = ("iteration", "step", "loss", "reward_margin", "logp_gap", "grad_norm")
    assert [[r[k] for k in keys] for r in train_steps(out)] == [[r[k] for k in keys] for r in train_steps(two_rank_run)]
    # and the uninterrupted two-rank run is the one-process run, both iterations
    plain_out, _ = plain_run
    assert [r["loss"] for r in train_steps(two_rank_run)] == pytest.approx(
        [r["loss"] for r in train_steps(plain_out)], rel=1e-4, abs=1e-5)
    assert relative_distance(two_rank_run / "model", plain_out / "model", tiny_model_dir) < 1e-3


@pytest.mark.slow
def test_sigusr2_to_the_stage_checkpoints_the_workers_and_resumes(tmp_path, tiny_model_dir, spin_prompts):
    import subprocess
    import sys

    from tests.spin.conftest import REPO

    # one iteration of 8 steps, a checkpoint after each: the signal lands while the workers train
    manifest = write_manifest(tmp_path, tiny_model_dir, spin_prompts, resources=TWO, iterations=1,
                              epochs_per_iteration=4, save_every_steps=1)
    out = tmp_path / "out"
    proc = subprocess.Popen([str(Path(sys.executable).parent / "spin"), "--manifest", str(manifest)], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    end = time.time() + 600
    while not list((out / "checkpoints" / "iter-0").glob("step-*")):
        assert proc.poll() is None, proc.stderr.read()[-3000:]
        assert time.time() < end
        time.sleep(0.05)
    proc.send_signal(signal.SIGUSR2)
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 75, err[-3000:]
    assert processes_mentioning(str(out)) == [], "a worker outlived the preempted stage"
    assert (out / "logs" / "spin-iter0-attempt1.json.stop").exists(), "the stop reaches the workers by its file"
    result = json.loads((out / "logs" / "spin-iter0-attempt1.json.result.json").read_text())
    assert result["status"] == "preempted" and "/checkpoints/iter-0/step-" in result["checkpoint"]
    stopped = int(result["checkpoint"].rsplit("-", 1)[1])
    assert 1 <= stopped < 8 and record_of(out)["status"]["last_checkpoint"] == result["checkpoint"]

    res = run_proc(manifest)
    assert res.returncode == 0, res.stderr[-3000:]
    assert [r["step"] for r in train_steps(out)] == list(range(1, 9))
    assert record_of(out)["status"]["attempt"] == 2


@pytest.mark.slow
def test_a_run_resumes_on_another_number_of_ranks(plain_run, tmp_path, tiny_model_dir, spin_prompts):
    """Stopped mid-training on two ranks, resumed in one process (the checkpoint reshards), stopped mid-scoring,
    finished on two ranks again: the one-process run's losses and weights."""
    two = write_manifest(tmp_path, tiny_model_dir, spin_prompts, resources=TWO, name="two.json")
    one = write_manifest(tmp_path, tiny_model_dir, spin_prompts, name="one.json")  # the same output folder
    env = {"FLLM_SPIN_SIGNAL_AT": "train:0:1,score:1:2"}
    out = tmp_path / "out"
    assert run_inproc(two, env=env).exit_code == 75
    assert where(out) == ("train", 0, 0)
    assert run_inproc(one, env=env).exit_code == 75
    assert where(out) == ("score", 1, 3)
    res = run_inproc(two, env=env)
    assert res.exit_code == 0, res.output
    plain_out, _ = plain_run
    assert (out / "pairs" / "iter-1.jsonl").read_bytes() == (plain_out / "pairs" / "iter-1.jsonl").read_bytes()
    assert [r["loss"] for r in train_steps(out)] == pytest.approx(
        [r["loss"] for r in train_steps(plain_out)], rel=1e-4, abs=1e-5)
    assert relative_distance(out / "model", plain_out / "model", tiny_model_dir) < 1e-3


@pytest.mark.slow
def test_a_tail_smaller_than_the_world_leaves_a_rank_idle_and_changes_nothing(tmp_path, tiny_model_dir):
    """Five pairs on two ranks: the last scoring chunk and the last global batch hold one pair, so rank 1 scores
    and trains nothing there (dummy micro-batches keep the collectives in step) and the run is the one-process run."""
    from tests.spin.conftest import prompt_rows, write_prompts

    prompts = write_prompts(tmp_path / "five.parquet", prompt_rows(5))
    outs = {}
    for name, resources in (("one", None), ("two", TWO)):
        m = write_manifest(tmp_path, tiny_model_dir, prompts, out=name, name=f"{name}.json", iterations=1,
                           resources=resources)
        res = run_inproc(m)
        assert res.exit_code == 0, res.output
        outs[name] = tmp_path / name
    one, two = outs["one"], outs["two"]
    assert (one / "pairs" / "iter-0.jsonl").read_bytes() == (two / "pairs" / "iter-0.jsonl").read_bytes()
    refs = [jsonl(o / "pairs" / "iter-0.reference.jsonl") for o in (one, two)]
    assert len(refs[1]) == 5
    for a, b in zip(*refs, strict=True):
        assert a["ref_logp_rejected"] == pytest.approx(b["ref_logp_rejected"], abs=1e-4)
    assert [(r["step"], r["units"]) for r in train_steps(two)] == [(1, 2), (2, 2), (3, 1)]
    for key in ("loss", "reward_margin", "logp_gap"):
        assert [r[key] for r in train_steps(two)] == pytest.approx([r[key] for r in train_steps(one)], rel=1e-4,
                                                                   abs=1e-5), key
    assert relative_distance(two / "model", one / "model", tiny_model_dir) < 1e-3
