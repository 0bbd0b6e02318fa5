"""Submit a planned study to Slurm: only what is not done and not already queued, with ``afterok`` dependencies.

Each run is classified from its record and its last submission: done (skip), in flight (its job is pending or
running: later jobs depend on it, nothing is resubmitted), in trouble (failed, stale, lost, or preempted and not
requeued: held back with its dependents until ``study retry``), or to submit. Runs to submit are grouped level by
level (a level waits only for earlier ones); runs of one shape with the same dependencies become one array job.
Dependencies are combined into one ``--dependency=afterok:a:b`` flag (Slurm honours only one), and
``--kill-on-invalid-dep=yes`` removes a job whose upstream failed instead of leaving it pending forever.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from stages.study.dag import Plan
from stages.study.errors import StudyError
from stages.study.paths import local
from stages.study.profiles import ClusterProfile
from stages.study.queue import queue_states
from stages.study.records import is_done, needs_force, read_all, read_record, read_submission, submission_path
from stages.study.render import Job, render, shape_key
from stages.study.status import compute


@dataclass
class Submitted:
    path: str
    script: str
    argv: list[str]
    job_id: str | None = None


@dataclass
class SubmitResult:
    submitted: dict[str, str] = field(default_factory=dict)  # run id -> job ref
    waiting_on: dict[str, str] = field(default_factory=dict)  # in flight already: run id -> job ref
    done: list[str] = field(default_factory=list)
    held_back: dict[str, str] = field(default_factory=dict)  # run id -> why
    jobs: list[Submitted] = field(default_factory=list)


def classify(plan: Plan, retry: bool, only: set[str] | None, queue: dict[str, str] | None) -> tuple[
        set[str], dict[str, str], list[str], dict[str, str]]:
    """(to submit, in flight run -> job ref, done, held back run -> reason)."""
    rows = {r.run_id: r for r in compute(plan, queue=queue, ask_queue=False)}
    records = read_all(plan)
    scope = plan.downstream(only) if only is not None else set(plan.runs)
    submit: set[str] = set()
    flight: dict[str, str] = {}
    done: list[str] = []
    held: dict[str, str] = {}
    for rid, run in plan.runs.items():
        row = rows[rid]
        upstream_moves = [d for d in run.deps if d in submit]
        upstream_held = next((d for d in run.deps if d in held), None)
        if is_done(run, records[rid]) and not upstream_moves:
            done.append(rid)
        elif row.state in ("queued", "running") or (row.state == "preempted" and "requeued" in row.detail):
            if row.job:
                flight[rid] = row.job
            else:
                held[rid] = f"{row.state} without a known Slurm job (started elsewhere?)"
        elif rid not in scope:
            held[rid] = "not selected"
        elif upstream_held is not None:
            up = held[upstream_held]
            held[rid] = up if up.startswith("waits for") else f"waits for {upstream_held}, which is {up}"
        elif row.state in ("failed", "stale", "lost", "preempted", "unreadable") and not retry:
            held[rid] = f"{row.state}: {row.detail} -- `study retry` resubmits it"
        else:
            submit.add(rid)
    return submit, flight, done, held


def _levels(plan: Plan, submit: set[str]) -> list[list[str]]:
    level: dict[str, int] = {}
    for rid, run in plan.runs.items():
        if rid in submit:
            level[rid] = 1 + max((level[d] for d in run.deps if d in level), default=-1)
    out: list[list[str]] = [[] for _ in range(max(level.values(), default=-1) + 1)]
    for rid, lv in level.items():
        out[lv].append(rid)
    return out


class SubmitError(RuntimeError):
    """sbatch failed part-way: jobs submitted before it stay submitted and recorded (exit code 1, not 2)."""


def _sbatch(argv: list[str], result: SubmitResult) -> str:
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=120)
        err = None if r.returncode == 0 else (r.stderr.strip() or r.stdout.strip())
    except (OSError, subprocess.TimeoutExpired) as e:
        err = str(e)
    if err is not None:
        done = f"; already submitted: {', '.join(sorted(result.submitted))}" if result.submitted else ""
        raise SubmitError(f"sbatch refused `{' '.join(argv)}`: {err}{done}")
    return r.stdout.strip().split(";")[0]


def _record(job: Job, plan: Plan, refs: list[str], path: str, profile: ClusterProfile, array_id: str | None) -> None:
    for i, (run, ref) in enumerate(zip(job.runs, refs)):
        log = job.log_pattern(plan)
        if array_id is not None:
            log = log.replace("%A", array_id).replace("%a", str(i))
        else:
            log = log.replace("%j", ref)
        doc = {"job_id": ref, "array_job_id": array_id, "array_task": i if array_id is not None else None,
               "cluster": profile.name, "script": path, "log": log, "dependencies": job.deps,
               "submitted_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        target = local(submission_path(run))
        target.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")


def submit_plan(plan: Plan, profile: ClusterProfile, *, dry_run: bool = False, retry: bool = False,
                only: set[str] | None = None, images_dir: str | None = None, account: str | None = None,
                echo: Callable[[str], None] = print) -> SubmitResult:
    """Submit (or, with ``dry_run``, print) the jobs of every run that must run. Manifests must be written first."""
    has_submissions = any(read_submission(run) for run in plan.runs.values())
    queue = queue_states() if (has_submissions or not dry_run) else None
    if queue is None and has_submissions and not dry_run:
        raise StudyError("squeue cannot answer, so in-flight jobs cannot be told from finished ones; not submitting")
    submit, flight, done, held = classify(plan, retry, only, queue)
    result = SubmitResult(waiting_on=flight, done=done, held_back=held)
    refs: dict[str, str] = dict(flight)
    for level in _levels(plan, submit):
        groups: dict[tuple, list[str]] = {}
        for rid in level:
            run = plan.runs[rid]
            deps = tuple(sorted({refs[d] for d in run.deps if d in refs}))
            force = needs_force(run, read_record(run), any(d in submit for d in run.deps))
            key = (shape_key(run, profile) if profile.arrays else rid, deps, force)
            groups.setdefault(key, []).append(rid)
        for (_, deps, force), rids in groups.items():
            job = Job([plan.runs[r] for r in rids], list(deps), force)
            path = job.script_path(plan)
            text = render(job, plan, profile, images_dir, account)
            argv = ["sbatch", "--parsable"]
            if deps:
                argv += [f"--dependency=afterok:{':'.join(deps)}", "--kill-on-invalid-dep=yes"]
            argv.append(os.path.expandvars(path))
            sub = Submitted(path, text, argv)
            result.jobs.append(sub)
            if dry_run:
                placeholder = f"<{job.name(plan)}>"
                task_refs = [f"{placeholder}_{i}" for i in range(len(rids))] if job.is_array else [placeholder]
            else:
                script = local(path)
                script.parent.mkdir(parents=True, exist_ok=True)
                local(job.log_pattern(plan)).parent.mkdir(parents=True, exist_ok=True)
                script.write_text(text, encoding="utf-8")
                sub.job_id = _sbatch(argv, result)
                task_refs = [f"{sub.job_id}_{i}" for i in range(len(rids))] if job.is_array else [sub.job_id]
                _record(job, plan, task_refs, path, profile, sub.job_id if job.is_array else None)
            for rid, ref in zip(rids, task_refs):
                refs[rid] = ref
                result.submitted[rid] = ref
            echo(f"  {'would submit' if dry_run else 'submitted'} {job.name(plan)}"
                 f"{f' (array of {len(rids)})' if job.is_array else ''}"
                 f"{' after ' + ':'.join(deps) if deps else ''}{'' if dry_run else ' as ' + str(sub.job_id)}")
    return result
