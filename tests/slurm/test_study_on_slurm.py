"""The conductor against a real single-node Slurm: a small study submitted with dependencies runs to completion and
re-submitting it submits nothing; a failed upstream job leaves its dependents not run and `study status` says why;
a job that gets the pre-timeout signal checkpoints, is requeued and finishes; a run killed outright is reported
stale and `study retry` resumes it. The runs are the lifecycle test stage, launched through its CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from stages.study.cli import main
from stages.study.definition import load_study
from stages.study.planner import plan_study
from stages.study.status import compute
from tests.study.conftest import counter_run, diamond, record, write_study

pytestmark = [pytest.mark.slurm, pytest.mark.usefixtures("slurm_cluster", "counter_env")]


def study(*args: str) -> str:
    res = CliRunner().invoke(main, list(args))
    assert res.exit_code == 0, res.output + res.stderr
    return res.output


def states(path: Path, root: Path) -> dict[str, tuple[str, str]]:
    plan = plan_study(load_study(str(path)), str(root), "local", check_paths=False)
    return {r.run_id: (r.state, r.detail) for r in compute(plan)}


def wait_for(what: str, check, timeout: float = 90.0, every: float = 1.0, explain=lambda: ""):
    end = time.time() + timeout
    while True:
        got = check()
        if got:
            return got
        if time.time() > end:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}\n{explain()}")
        time.sleep(every)


def job_story(job: str, log: Path) -> str:
    """What Slurm and the job's log say, for a failure message."""
    show = subprocess.run(["scontrol", "show", "job", job], capture_output=True, text=True)
    done = Path("/var/log/slurm/jobcomp.log")
    comp = [ln for ln in done.read_text().splitlines() if f"JobId={job} " in ln] if done.exists() else []
    return (f"scontrol show job {job}:\n{show.stdout}{show.stderr}\njobcomp: {comp}\n"
            f"log {log}:\n{log.read_text() if log.exists() else '(none)'}")


def in_queue(job: str) -> str:
    out = subprocess.run(["squeue", "-h", "-j", job, "-o", "%T|%r"], capture_output=True, text=True).stdout
    return out.strip()


def submission(root: Path, study_name: str, run_id: str) -> dict:
    return json.loads((root / study_name / run_id / "slurm.json").read_text())


def test_study_with_dependencies_runs_to_completion_and_resubmits_nothing(tmp_path):
    path, root = diamond(tmp_path, "sdiamond"), tmp_path / "runs"
    out = study("submit", str(path), "--cluster", "local", "--root", str(root))
    assert "4 submitted in 3 jobs" in out
    b, c, d = (submission(root, "sdiamond", r) for r in "bcd")
    assert b["array_job_id"] == c["array_job_id"] is not None  # same shape, same dependency: one array job
    assert d["dependencies"] == sorted([b["job_id"], c["job_id"]])
    wait_for("every run to succeed", lambda: all(s == "succeeded" for s, _ in states(path, root).values()))
    recs = {r: record(root, "sdiamond", r) for r in "abcd"}
    assert recs["d"]["status"]["started_at"] >= max(recs[r]["status"]["ended_at"] for r in "bc")
    assert recs["b"]["provenance"]["slurm"]["SLURM_ARRAY_JOB_ID"] == b["array_job_id"]
    assert Path(b["log"]).is_file() and "stage exited 0" in Path(b["log"]).read_text()

    out = study("submit", str(path), "--cluster", "local", "--root", str(root))
    assert "0 submitted in 0 jobs" in out and "4 done" in out


def test_failed_upstream_leaves_dependents_not_run(tmp_path):
    path, root = diamond(tmp_path, "sfail", crash_at=1), tmp_path / "runs"
    study("submit", str(path), "--cluster", "local", "--root", str(root))
    jobs = [submission(root, "sfail", r)["job_id"] for r in "bcd"]
    wait_for("a to fail and its dependents to leave the queue",
             lambda: states(path, root)["a"][0] == "failed" and not any(in_queue(j) for j in jobs))
    st = states(path, root)
    assert "RuntimeError: boom at step 1" in st["a"][1]
    for r in "bcd":
        assert st[r][0] == "blocked" and "upstream a failed" in st[r][1], st[r]
        assert not (root / "sfail" / r / "out").exists()  # never started
    out = study("status", str(path), "--root", str(root))
    assert "attempt-1.log" in out and "slurm-" in out  # where the failure's logs are
    out = study("submit", str(path), "--cluster", "local", "--root", str(root))
    assert "0 submitted" in out and "held back: a: failed" in out and "study retry" in out


def test_pre_timeout_signal_checkpoints_requeues_and_finishes(tmp_path):
    # 120 s of work under a 2-minute limit with the local profile's 40 s grace: slurmctld checks limits every 30 s and
    # sends the signal once fewer than grace + 30 s are left, so it comes 50-80 s in, long after the stage started
    # and well before the work or the limit ends
    run = counter_run("long", steps=300, sleep_s=0.4)
    run["resources"]["time_minutes"] = 2
    path, root = write_study(tmp_path, "srequeue", [run]), tmp_path / "runs"
    study("submit", str(path), "--cluster", "local", "--root", str(root))
    job = submission(root, "srequeue", "long")["job_id"]
    log = Path(submission(root, "srequeue", "long")["log"])
    wait_for("the job to be requeued and held", lambda: "BeginTime" in in_queue(job), timeout=200,
             explain=lambda: job_story(job, log))
    rec = record(root, "srequeue", "long")
    assert rec["status"]["state"] == "preempted" and "SIGUSR2" in rec["status"]["message"]
    assert rec["status"]["last_checkpoint"].endswith("state.json")
    assert states(path, root)["long"][0] == "preempted"  # not terminal
    # release the ~2 minute requeue hold now, and give the second attempt the time to finish
    subprocess.run(["scontrol", "update", f"jobid={job}", "TimeLimit=5"], check=True)

    def released_and_done() -> bool:
        # an update of StartTime silently does nothing while the job is still completing: repeat it while held
        if "BeginTime" in in_queue(job):
            subprocess.run(["scontrol", "update", f"jobid={job}", "StartTime=now"], check=False)
        return states(path, root)["long"][0] == "succeeded"

    wait_for("the second attempt to succeed", released_and_done, timeout=240, every=3.0,
             explain=lambda: job_story(job, log))
    rec = record(root, "srequeue", "long")
    assert rec["status"]["attempt"] == 2 and rec["status"]["restart_count"] == 1
    steps = [int(x) for x in (root / "srequeue" / "long" / "out" / "steps.log").read_text().split()]
    assert steps == list(range(300))  # resumed from the checkpoint: nothing repeated, nothing lost
    text = log.read_text()
    assert "requeueing job" in text and "restart 1" in text


def test_killed_run_is_stale_and_retry_resumes_it(tmp_path):
    path, root = write_study(tmp_path, "sstale", [counter_run("k", steps=40, sleep_s=0.1),
                                                  counter_run("after", seed_from="k", steps=1)]), tmp_path / "runs"
    study("submit", str(path), "--cluster", "local", "--root", str(root))
    job = submission(root, "sstale", "k")["job_id"]
    steps = root / "sstale" / "k" / "out" / "steps.log"
    wait_for("a few steps", lambda: steps.exists() and len(steps.read_text().split()) >= 5, every=0.2)
    lock = json.loads((root / "sstale" / "k" / "out" / ".lock").read_text())
    os.kill(lock["pid"], signal.SIGKILL)  # the stage dies as in an OOM kill: no chance to write a final record
    wait_for("the job to leave the queue", lambda: not in_queue(job))
    assert record(root, "sstale", "k")["status"]["state"] == "running"
    st = states(path, root)
    assert st["k"][0] == "stale" and f"job {job} is gone" in st["k"][1]
    assert "held back: k: stale" in study("submit", str(path), "--cluster", "local", "--root", str(root))
    out = study("retry", str(path), "--executor", "slurm", "--cluster", "local", "--root", str(root))
    assert "1 submitted" in out or "2 submitted" in out
    wait_for("the retried runs to succeed", lambda: all(s == "succeeded" for s, _ in states(path, root).values()))
    rec = record(root, "sstale", "k")
    assert rec["status"]["attempt"] == 2
    assert [int(x) for x in steps.read_text().split()] == list(range(40))
