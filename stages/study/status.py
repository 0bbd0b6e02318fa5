"""``study status``: one row per run, from the manifests the runs wrote, with failures' messages and log paths.

States: ``succeeded``; ``outdated`` (its record is of another spec, the study changed: will run again);
``running``; ``stale`` (a ``running`` record whose job or process is gone: incomplete, not done); ``preempted``
(not terminal: requeued, or needs ``study retry`` when its job is gone); ``failed``; ``blocked`` (not run because
an upstream run did not succeed); ``queued`` (submitted, waiting in Slurm); ``lost`` (submitted, job gone, no
record); ``pending`` (planned, not started).
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import asdict, dataclass, field
from typing import Any

from stages.study.dag import Plan, PlannedRun
from stages.study.paths import join, local
from stages.study.queue import job_state, queue_states
from stages.study.records import log_paths, read_all, read_local, read_submission, spec_matches, state_of

TROUBLE = ("failed", "stale", "lost", "blocked", "preempted")


@dataclass
class RunStatus:
    run_id: str
    stage: str
    state: str
    detail: str = ""
    attempt: int | None = None
    progress: float | None = None
    job: str | None = None
    logs: list[str] = field(default_factory=list)


def _lock_alive(run: PlannedRun) -> bool | None:
    """For a run started here without Slurm: does the process holding its output lock still live?"""
    path = local(join(run.output_dir, ".lock"))
    try:
        holder = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    if holder.get("host") != socket.gethostname():
        return None
    try:
        os.kill(int(holder.get("pid", 0)), 0)
    except (ProcessLookupError, ValueError):
        return False
    except PermissionError:
        return True
    return True


def _job_of(record: dict[str, Any] | None, submission: dict[str, Any] | None) -> str | None:
    slurm = ((record or {}).get("provenance") or {}).get("slurm") or {}
    if slurm.get("SLURM_ARRAY_JOB_ID") and slurm.get("SLURM_ARRAY_TASK_ID"):
        return f"{slurm['SLURM_ARRAY_JOB_ID']}_{slurm['SLURM_ARRAY_TASK_ID']}"
    return slurm.get("SLURM_JOB_ID") or (submission or {}).get("job_id")


def _from_record(run: PlannedRun, record: dict[str, Any], submission: dict | None, queue: dict | None) -> RunStatus:
    st = record.get("status") or {}
    state = state_of(record) or "unreadable"
    s = RunStatus(run.run_id, run.stage, state, st.get("message") or "", st.get("attempt"), st.get("progress"))
    s.job = _job_of(record, submission)
    if state in ("succeeded", "failed", "preempted", "skipped") and not spec_matches(run, record):
        s.state = "outdated"
        s.detail = f"{state} for another spec (the study changed); the next run or submit redoes it"
    elif state in ("running", "preempted"):
        if s.job:
            js = job_state(queue, s.job)
            alive = None if js is None else js != "gone"
            where = f"Slurm job {s.job}"
        else:
            alive = _lock_alive(run)
            where = f"process on {(record.get('provenance') or {}).get('host')}"
        if state == "running" and alive is False:
            s.state, s.detail = "stale", f"record says running but its {where} is gone: incomplete; `study retry`"
        elif state == "preempted":
            if alive:
                s.detail = f"{s.detail} (requeued: {where} is {job_state(queue, s.job)})".strip()
            elif alive is False:
                s.detail = f"{s.detail} ({where} is gone and was not requeued: `study retry`)".strip()
        elif state == "running" and s.job and alive:
            s.detail = job_state(queue, s.job) or ""
    elif state == "failed":
        code = st.get("exit_code")
        s.detail = f"exit {code}: {s.detail}" if code is not None else s.detail
    return s


def compute(plan: Plan, queue: dict[str, str] | None = None, ask_queue: bool = True) -> list[RunStatus]:
    records = read_all(plan)
    submissions = {rid: read_submission(run) for rid, run in plan.runs.items()}
    if queue is None and ask_queue and any(submissions.values()):
        queue = queue_states()
    rows: dict[str, RunStatus] = {}
    for rid, run in plan.runs.items():
        record, sub = records[rid], submissions[rid]
        if record is not None:
            row = _from_record(run, record, sub, queue)
        else:
            row = RunStatus(rid, run.stage, "pending", "planned, not started")
            bad = next((d for d in run.deps if rows[d].state in ("failed", "stale", "lost", "blocked", "unreadable")),
                       None)
            job = (sub or {}).get("job_id")
            js = job_state(queue, job)
            if js not in (None, "gone"):
                row.state, row.detail, row.job = "queued", f"Slurm job {job}: {js}", job
            elif bad is not None:
                up = rows[bad]
                row.state, row.job = "blocked", job
                row.detail = up.detail if up.state == "blocked" else f"not run: upstream {bad} {up.state}: {up.detail}"
            elif not job and (read_local(run) or {}).get("exit_code") not in (None, 0):
                code = read_local(run)["exit_code"]
                why = " (invalid manifest or input)" if code == 2 else ""
                row.state, row.detail = "failed", f"exit {code}{why} before the stage wrote a record; see its log"
            elif job and js == "gone":
                row.state, row.detail, row.job = "lost", f"Slurm job {job} ended without writing a record", job
            elif job:
                row.state, row.detail, row.job = "queued", f"submitted as Slurm job {job}", job
        row.logs = [] if row.state == "blocked" else [p for p in log_paths(run, record, sub) if _exists(p)]
        rows[rid] = row
    return list(rows.values())


def render_table(rows: list[RunStatus], plan: Plan, verbose: bool = False) -> str:
    counts: dict[str, int] = {}
    for r in rows:
        counts[r.state] = counts.get(r.state, 0) + 1
    head = f"study {plan.study} ({plan.study_dir}): " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    width = max([len(r.run_id) for r in rows] + [6])
    lines = [head, f"{'run':<{width}}  {'stage':<13} {'state':<10} {'try':>3}  detail"]
    for r in rows:
        attempt = "" if r.attempt is None else str(r.attempt)
        detail = r.detail if verbose or len(r.detail) <= 100 else r.detail[:97] + "..."
        if r.progress is not None and r.state in ("running", "preempted", "stale"):
            detail = f"{r.progress:.0%} {detail}"
        lines.append(f"{r.run_id:<{width}}  {r.stage:<13} {r.state:<10} {attempt:>3}  {detail}")
        if r.state in TROUBLE and r.logs:
            lines.append(f"{'':<{width}}  logs: {', '.join(str(local(p)) for p in r.logs)}")
    if plan.left_out:
        lines.append(f"({len(plan.left_out)} runs left out of the plan: `study plan` lists them)")
    return "\n".join(lines)


def to_json(rows: list[RunStatus]) -> str:
    return json.dumps([asdict(r) for r in rows], indent=2)


def _exists(path: str) -> bool:
    try:
        return local(path).exists()
    except ValueError:
        return False
