"""``study check``: every planned manifest through its own stage's validate and preflight, before any allocation.

Why each stage checks its own manifests: the conductor only knows the manifests' shapes; whether a dataset has the
columns a trainer reads, whether a batch divides over the GPUs, whether verl accepts the composed config, whether a
method can run on the GPUs it is given (the native pi-distill runs in one process; SELF's vLLM layout must fit), whether
benchmark rows are where the evaluator looks: only the stage knows. So the conductor starts one ``<stage> check``
process per stage (inside the stage's image with ``--images``), a few at once, and hands it that stage's manifests on
stdin; inputs that upstream runs have not produced yet are pending, and the stage lists which of its checks wait for
them.

The memory model adds its refusals (a trainer run that cannot fit its GPUs, with the smallest resources that would)
to the same table. Nothing is written: the manifests travel on stdin, not through the study folder. The result is
one row per run, the failures first, and a count of the distinct causes, so a missing model shows once as the cause
of forty failures.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field

from stages.study.commands import check_argv
from stages.study.dag import Plan, PlannedRun
from stages.study.errors import StudyError

MAX_PARALLEL = 4  # stage checks at once: each is a process that imports torch (about 0.5 GB), on a shared login node


@dataclass
class RunCheck:
    run_id: str
    stage: str
    ok: bool
    problem: str | None = None
    deferred: list[str] = field(default_factory=list)


@dataclass
class CheckReport:
    rows: list[RunCheck]

    @property
    def failed(self) -> list[RunCheck]:
        return [r for r in self.rows if not r.ok]

    @property
    def ok(self) -> bool:
        return not self.failed

    def causes(self) -> list[tuple[str, int]]:
        """Distinct failure messages (the part after the JSON path) with how many runs each stops."""
        return Counter(r.problem or "" for r in self.failed).most_common()


def _check_stage(stage: str, runs: list[PlannedRun], images: str | None) -> list[RunCheck]:
    argv = check_argv(stage, runs[0].image, runs, images)
    payload = json.dumps([r.manifest for r in runs])
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.run(argv, input=payload, capture_output=True, text=True, env=env, check=False)
    found: dict[str, RunCheck] = {}
    for line in proc.stdout.splitlines():
        try:
            doc = json.loads(line)
        except ValueError:
            continue
        if isinstance(doc, dict) and "run_id" in doc:
            found[doc["run_id"]] = RunCheck(doc["run_id"], stage, bool(doc.get("ok")), doc.get("problem"),
                                            list(doc.get("deferred") or []))
    rows = []
    tail = " | ".join(proc.stderr.strip().splitlines()[-3:])
    for r in runs:
        rows.append(found.get(r.run_id) or RunCheck(
            r.run_id, stage, False, f"`{stage} check` gave no verdict (exit {proc.returncode}): {tail or 'no output'}"))
    return rows


def _add_memory(rows: list[RunCheck], memory: dict[str, str]) -> None:
    """The memory model's refusals (run id -> why): a run its stage passed fails; a failing one gets a second row."""
    by_id = {r.run_id: r for r in rows}
    for rid, why in memory.items():
        row = by_id.get(rid)
        if row is not None and row.ok:
            row.ok, row.problem = False, why
        else:
            rows.append(RunCheck(rid, row.stage if row else "memory", False, why))


def check_plan(plan: Plan, images: str | None = None, echo: Callable[[str], None] | None = None,
               memory: dict[str, str] | None = None) -> CheckReport:
    """Check every run of the plan; runs with an explicit command are left to that command (listed as such).
    ``memory``: runs the memory model refuses (``stages.study.costing``), with why and what would fit."""
    by_stage: dict[str, list[PlannedRun]] = {}
    rows: list[RunCheck] = []
    for run in plan.runs.values():
        if run.command:
            rows.append(RunCheck(run.run_id, run.stage, True, None, ["its own command validates it when it runs"]))
        else:
            by_stage.setdefault(run.stage, []).append(run)
    for stage, runs in by_stage.items():
        if echo:
            echo(f"  checking {len(runs)} {stage} manifest(s) ...")
    with ThreadPoolExecutor(max_workers=max(1, min(len(by_stage), os.cpu_count() or 1, MAX_PARALLEL))) as pool:
        futures = {pool.submit(_check_stage, stage, runs, images): stage for stage, runs in by_stage.items()}
        for future in as_completed(futures):
            stage = futures[future]
            try:
                got = future.result()
            except StudyError as e:
                got = [RunCheck(r.run_id, stage, False, str(e)) for r in by_stage[stage]]
            rows += got
            if echo:
                echo(f"  {stage}: {sum(r.ok for r in got)} of {len(got)} pass")
    from stages.study.staging import missing_items  # inputs absent or changed since `study stage`, by name

    rows += [RunCheck(name, "staging", False, why) for name, why in missing_items(plan)]
    _add_memory(rows, memory or {})
    order = {rid: i for i, rid in enumerate(plan.runs)}
    rows.sort(key=lambda r: (r.ok, order.get(r.run_id, 0)))
    return CheckReport(rows)


def render(report: CheckReport, plan: Plan, verbose: bool = False) -> str:
    """The table a person reads: failures with their causes, then (with --verbose) every run and what waits."""
    lines = []
    width = max((len(r.run_id) for r in report.rows), default=10)
    shown = report.rows if verbose else report.failed
    for r in shown:
        state = "ok" if r.ok else "FAIL"
        waits = "; ".join(r.deferred) if len(r.deferred) <= 3 else f"{len(r.deferred)} inputs from upstream runs"
        what = r.problem or (f"waits for: {waits}" if r.deferred else "")
        lines.append(f"  {state:<4} {r.stage:<13} {r.run_id:<{width}}  {what}".rstrip())
    n = len(report.rows)
    if report.ok:
        waiting = sum(1 for r in report.rows if r.deferred)
        lines.append(f"study {plan.study}: all {n} planned manifests pass their stage's validate and preflight "
                     f"({waiting} with checks deferred until their upstream runs have written their outputs)")
    else:
        lines.append(f"study {plan.study}: {len(report.failed)} of {n} planned manifests fail; causes:")
        for problem, count in report.causes():
            lines.append(f"  {count:>4} x {problem}")
    return "\n".join(lines)
