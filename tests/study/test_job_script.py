"""The rendered sbatch script run by bash itself: a pre-timeout signal that comes while the job is still setting up
(a module load, an image copy) neither kills the batch shell nor starts the stage, and the job asks to be requeued;
the signal's grace is capped at half the job's limit, so a short job is not signalled the moment it starts."""

from __future__ import annotations

import os
import signal
import subprocess
import time

from stages.study.definition import load_study
from stages.study.planner import plan_study, write_plan
from stages.study.profiles import load_profile
from stages.study.submit import submit_plan
from tests.study.conftest import counter_run, write_study


def rendered(tmp_path, minutes: int, **profile_changes) -> str:
    run = counter_run("r", steps=3)
    run["resources"]["time_minutes"] = minutes
    plan = plan_study(load_study(str(write_study(tmp_path, "js", [run]))), str(tmp_path / "runs"), "local",
                      check_paths=False)
    write_plan(plan)
    profile = load_profile("local").model_copy(update=profile_changes)
    jobs = submit_plan(plan, profile, dry_run=True, echo=lambda s: None).jobs
    assert len(jobs) == 1
    return jobs[0].script


def test_grace_is_at_most_half_the_limit(tmp_path):
    assert "#SBATCH --signal=B:USR2@40\n" in rendered(tmp_path, 60)  # the profile's 40 s
    assert "#SBATCH --signal=B:USR2@30\n" in rendered(tmp_path, 1)  # not 40 s of a 60 s job
    assert "#SBATCH --signal=B:USR2@150\n" in rendered(tmp_path, 5, signal_grace_s=300)


def test_signal_during_setup_requeues_without_starting_the_stage(tmp_path):
    # no restarts left, so the script reports instead of calling scontrol: no Slurm is needed to run it
    script = rendered(tmp_path, 60, setup=["sleep 2"], max_restarts=0)
    env = dict(os.environ, SLURM_JOB_ID="1", SLURM_RESTART_COUNT="0")
    proc = subprocess.Popen(["bash", "-c", script], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    time.sleep(0.5)  # bash is in `sleep 2`
    os.kill(proc.pid, signal.SIGUSR2)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 75, (out, err)
    assert "the pre-timeout signal came before the stage started" in out
    assert "not requeued: restart count 0 reached 0" in err
    assert not (tmp_path / "runs" / "js" / "r" / "out").exists()  # the stage never ran


def test_without_a_signal_the_stage_runs(tmp_path):
    script = rendered(tmp_path, 60, launcher="direct")
    env = dict(os.environ, SLURM_JOB_ID="1", PYTHONPATH=str(os.getcwd()))
    done = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "stage exited 0" in done.stdout
    assert (tmp_path / "runs" / "js" / "r" / "out" / "steps.log").read_text().split() == ["0", "1", "2"]
