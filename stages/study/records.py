"""What has already happened to each run, read from files the runs themselves wrote (never from ``sacct``).

A run's truth is its stage's record, ``<run_dir>/out/manifest.json`` (state, attempt, message, exit code, Slurm ids);
the conductor adds ``<run_dir>/slurm.json`` when it submits a job. A run counts as done only when its record
succeeded *for the same work*: same stage, params, inputs, seed, engine and thinking as planned now, and nothing
upstream of it has to run again. ``preempted`` and a ``running`` record whose job is gone are never done.
"""

from __future__ import annotations

import json
from typing import Any

from stages.study.dag import Plan, PlannedRun
from stages.study.merge import is_subset
from stages.study.paths import join, local


def _read_json(path: str) -> dict[str, Any] | None:
    try:
        p = local(path)
    except ValueError:  # $SCRATCH unset here (a dry run for another machine): nothing can be recorded
        return None
    if not p.is_file():
        return None
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        return {"status": {"state": "unreadable", "message": f"{p}: {e}"}}
    return data if isinstance(data, dict) else None


def read_record(run: PlannedRun) -> dict[str, Any] | None:
    return _read_json(run.record_path)


def submission_path(run: PlannedRun) -> str:
    return join(run.run_dir, "slurm.json")


def read_submission(run: PlannedRun) -> dict[str, Any] | None:
    return _read_json(submission_path(run))


def read_local(run: PlannedRun) -> dict[str, Any] | None:
    """The local executor's note of the last process it ran for this run (exit code, log)."""
    return _read_json(join(run.run_dir, "local.json"))


def state_of(record: dict[str, Any] | None) -> str | None:
    return ((record or {}).get("status") or {}).get("state")


def _inputs(spec: dict[str, Any]) -> dict[str, Any]:
    return {k: {f: v for f, v in (ref or {}).items() if v is not None} for k, ref in (spec.get("inputs") or {}).items()}


def spec_matches(run: PlannedRun, record: dict[str, Any]) -> bool:
    """Is the recorded run the same work as the planned one? (Resources and tracking do not count.)"""
    want, got = run.manifest["spec"], record.get("spec") or {}
    if record.get("stage") != run.stage or _inputs(want) != _inputs(got):
        return False
    from stages.registry import BY_NAME

    w_params, g_params = want.get("params") or {}, got.get("params") or {}
    # Project stages' planned params are normalised (every default written), so they must be equal; an extra run's
    # command normalises its own, so only the keys the study sets can be compared (removing one is not seen).
    if (w_params != g_params) if run.stage in BY_NAME else not is_subset(w_params, g_params):
        return False
    w_rt, g_rt = want.get("runtime") or {}, got.get("runtime") or {}
    return all(w_rt.get(k) == g_rt.get(k) for k in ("seed", "engine", "thinking") if k in w_rt)


def is_done(run: PlannedRun, record: dict[str, Any] | None) -> bool:
    return state_of(record) == "succeeded" and spec_matches(run, record or {})


def needs_force(run: PlannedRun, record: dict[str, Any] | None, upstream_reruns: bool) -> bool:
    """Must the stage replace the record in its folder (``--force``)? Yes when that record is of other work: the
    study changed the run, or an upstream run is redone so its inputs change (the stage would refuse otherwise).
    A failed or preempted record of the same work is resumed instead."""
    if record is None or state_of(record) in (None, "unreadable"):
        return False
    return upstream_reruns or not spec_matches(run, record)


def read_all(plan: Plan) -> dict[str, dict[str, Any] | None]:
    return {rid: read_record(run) for rid, run in plan.runs.items()}


def to_run(plan: Plan, records: dict[str, dict[str, Any] | None]) -> set[str]:
    """Runs that must (re)run: not done, or downstream of a run that must."""
    out: set[str] = set()
    for rid, run in plan.runs.items():  # dependency order
        if not is_done(run, records.get(rid)) or any(d in out for d in run.deps):
            out.add(rid)
    return out


def log_paths(run: PlannedRun, record: dict[str, Any] | None, submission: dict[str, Any] | None) -> list[str]:
    """Where to look when a run failed: the stage's attempt log, the Slurm log, the local executor's log."""
    logs = []
    attempt = ((record or {}).get("status") or {}).get("attempt")
    if attempt:
        logs.append(join(run.output_dir, "logs", f"attempt-{attempt}.log"))
    if submission and submission.get("log"):
        logs.append(submission["log"])
    local_log = join(run.run_dir, "local.log")
    if _exists(local_log):
        logs.append(local_log)
    return logs


def _exists(path: str) -> bool:
    try:
        return local(path).is_file()
    except ValueError:
        return False
