"""Run a planned study on this machine: each run is a subprocess of its stage's CLI, in dependency order.

Runs that already succeeded for the same work are skipped without starting a process; a failed run leaves its
dependents not run (independent branches go on), and the stage's own record says why. Ctrl-C reaches the running
stages too (same process group): they checkpoint and write ``preempted``, and the next ``study run`` resumes them.
Each run's stdout and stderr go to ``<run_dir>/local.log``; the terminal gets one line per run.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from stages.study.commands import local_argv
from stages.study.dag import Plan, PlannedRun
from stages.study.paths import local
from stages.study.records import is_done, needs_force, read_all, read_record, state_of, to_run


@dataclass
class LocalResult:
    succeeded: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # already done before this call
    failed: dict[str, str] = field(default_factory=dict)  # run id -> message
    not_run: dict[str, str] = field(default_factory=dict)  # run id -> the failed upstream
    interrupted: bool = False

    @property
    def exit_code(self) -> int:
        if self.interrupted:
            return 130
        return 1 if self.failed or self.not_run else 0


def _tail(path: str, lines: int = 15) -> str:
    p = local(path)
    try:
        return "\n".join(p.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


class _Running:
    def __init__(self, run: PlannedRun, proc: subprocess.Popen, log_path: str, handle):
        self.run, self.proc, self.log_path, self.handle = run, proc, log_path, handle
        self.started = time.monotonic()


THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")


def _start(run: PlannedRun, images: str | None, upstream_reruns: bool, threads: int) -> _Running:
    log_path = f"{run.run_dir}/local.log"
    handle = open(local(log_path), "a", encoding="utf-8")
    force = needs_force(run, read_record(run), upstream_reruns)
    argv = local_argv(run, str(local(run.manifest_path)), images, force=force)
    handle.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} $ {' '.join(argv)}\n")
    handle.flush()
    env = dict(os.environ)
    env.setdefault("FLLM_CLUSTER", "local")
    for var in THREAD_VARS:  # runs side by side share the cores instead of each spawning a thread per core
        env.setdefault(var, str(threads))
    proc = subprocess.Popen(argv, stdout=handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
    return _Running(run, proc, log_path, handle)


def _finish(r: _Running, result: LocalResult, echo: Callable[[str], None]) -> None:
    r.handle.close()
    code = r.proc.returncode
    note = {"exit_code": code, "ended_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "log": r.log_path}
    local(f"{r.run.run_dir}/local.json").write_text(json.dumps(note, indent=2) + "\n", encoding="utf-8")
    record = read_record(r.run)
    took = time.monotonic() - r.started
    if code == 0 and is_done(r.run, record):
        result.succeeded.append(r.run.run_id)
        echo(f"  ok    {r.run.stage:<13} {r.run.run_id} ({took:.1f} s)")
        return
    if code == 75:
        result.interrupted = True
    msg = ((record or {}).get("status") or {}).get("message") or f"exit code {code}"
    if code == 0:
        msg = f"exit code 0 but its record is {state_of(record)!r} (or for another spec)"
    result.failed[r.run.run_id] = msg
    echo(f"  FAIL  {r.run.stage:<13} {r.run.run_id} (exit {code}, {took:.1f} s): {msg}")
    tail = _tail(r.log_path)
    if tail:
        echo("        " + tail.replace("\n", "\n        "))
    echo(f"        log: {local(r.log_path)}")


def run_local(plan: Plan, jobs: int = 1, images: str | None = None, only: set[str] | None = None,
              echo: Callable[[str], None] = print) -> LocalResult:
    """Run every run of ``plan`` that is not done (or only ``only`` and what depends on them), ``jobs`` at a time."""
    records = read_all(plan)
    todo = to_run(plan, records)
    if only is not None:
        todo &= plan.downstream(only)
    result = LocalResult(skipped=[rid for rid in plan.runs if rid not in todo])
    waiting = [rid for rid in plan.runs if rid in todo]
    threads = max(1, (os.cpu_count() or 1) // jobs)
    done = set(result.skipped)
    running: dict[str, _Running] = {}
    echo(f"study {plan.study}: {len(waiting)} to run, {len(result.skipped)} already done ({plan.study_dir})")
    try:
        while waiting or running:
            for rid in list(waiting):
                run = plan.runs[rid]
                bad = next((d for d in run.deps if d in result.failed or d in result.not_run), None)
                if bad is not None:
                    waiting.remove(rid)
                    result.not_run[rid] = bad
                    echo(f"  skip  {run.stage:<13} {rid}: upstream {bad} did not succeed")
                elif not result.interrupted and len(running) < jobs and all(d in done for d in run.deps):
                    waiting.remove(rid)
                    echo(f"  run   {run.stage:<13} {rid}")
                    running[rid] = _start(run, images, any(d in todo for d in run.deps), threads)
            if result.interrupted:
                waiting.clear()
            if not running:
                for rid in waiting:  # nothing runs and nothing can start: only possible if a dependency is missing
                    result.not_run[rid] = "a dependency that is neither done nor planned to run"
                break
            time.sleep(0.1)
            for rid, r in list(running.items()):
                if r.proc.poll() is not None:
                    del running[rid]
                    _finish(r, result, echo)
                    if rid in result.succeeded:
                        done.add(rid)
    except KeyboardInterrupt:
        result.interrupted = True
        echo("interrupted: waiting for running stages to checkpoint and stop ...")
        for r in running.values():
            try:
                r.proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                r.proc.kill()
            r.handle.close()
    return result
