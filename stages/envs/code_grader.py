"""Code grading: GEM's CodeEnv rules, run in our sandbox, in parallel, stopping at the first failure.

Rules kept from GEM 0.1.0 (so verdicts agree): the program is the last fenced code block
(`gem.utils.parsing.extract_code_from_model`); with more than `max_tests` (12) tests only the ones with
the longest inputs run; a test passes when the program exits 0 and its stripped stdout equals the
stripped expected output; a run that fails with "is not defined" is retried once with GEM's
`BASE_IMPORTS` prepended; GEM's import blocklist still fails a program (`gem_blocklist=True`, for parity:
the sandbox, not the blocklist, is the security boundary, so a study may turn it off).
Differences by design: no code block is a `fail` with reason `no_code_block` (GEM: reward -0.1); tests
of a program run in parallel and the rest are skipped (running ones killed) once one fails; an empty test
input is an empty stdin (GEM passes none, so its program would read the grader's own stdin). When several
tests fail, the verdict reports the earliest-positioned failure among those that completed.
"""

from __future__ import annotations

import os
import signal
import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from stages.envs.sandbox import RunResult, Sandbox, SandboxLimits
from stages.envs.verdict import ERROR, FAIL, TIMEOUT, Verdict

TAIL = 600


def select_tests(inputs: list[str], outputs: list[str], max_tests: int) -> list[tuple[int, str, str]]:
    """(original index, stdin, expected) in GEM's order: all tests, or the `max_tests` longest inputs."""
    order = list(range(len(inputs)))
    if len(order) > max_tests:
        order = sorted(order, key=lambda i: len(inputs[i]), reverse=True)[:max_tests]
    return [(i, inputs[i], outputs[i]) for i in order]


@dataclass
class _Job:
    """One program's grading state, shared by the worker threads running its tests."""

    code: str
    tests: list[tuple[int, str, str]]
    total_tests: int
    passed: int = 0
    failure: tuple[int, Verdict] | None = None  # (position in `tests`, verdict) of the earliest failure
    retried: bool = False
    cancel: threading.Event = field(default_factory=threading.Event)


class CodeGrader:
    """Grades code responses; share one instance (and its sandbox) across threads."""

    def __init__(
        self,
        sandbox: Sandbox | None = None,
        workers: int | None = None,
        max_tests: int = 12,
        gem_blocklist: bool = True,
        limits: SandboxLimits | None = None,
    ):
        self.sandbox = sandbox or Sandbox(limits)
        self.workers = workers or len(os.sched_getaffinity(0))
        self.max_tests = max_tests
        self.gem_blocklist = gem_blocklist
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(self.workers)  # concurrent runs, across all callers
        self._gem: tuple | None = None

    def _gem_helpers(self) -> tuple:
        if self._gem is None:
            from stages.envs.gem_bridge import gem_module

            self._gem = (
                gem_module("gem.utils.parsing").extract_code_from_model,
                gem_module("gem.utils.sandbox").check_forbidden_imports,
                gem_module("gem.utils.constants").BASE_IMPORTS,
            )
        return self._gem

    def prepare(self, response: str, tests: dict) -> _Job | Verdict:
        """Extract and vet the program; a Verdict when grading ends before running anything."""
        extract, forbidden, _ = self._gem_helpers()
        code = extract(response)
        n = len(tests["inputs"])
        if code is None:
            return Verdict.failed(FAIL, reason="no_code_block", tests_total=n, tests_run=0)
        if code == "...":  # GEM treats a bare ellipsis as a syntax error
            return Verdict.failed(FAIL, reason="placeholder_program", tests_total=n, tests_run=0)
        if self.gem_blocklist and forbidden(code):
            return Verdict.failed(FAIL, reason="blocked_by_gem_blocklist", tests_total=n, tests_run=0)
        selected = select_tests(tests["inputs"], tests["outputs"], self.max_tests)
        return _Job(code=code, tests=selected, total_tests=n)

    def _run_test(self, job: _Job, pos: int) -> None:
        index, stdin, expected = job.tests[pos]
        with self._slots:  # verl may call from many threads at once: keep to `workers` programs running
            if job.cancel.is_set():
                return
            result = self.sandbox.run(job.code, stdin, cancel=job.cancel)
            retried = False
            if not result.ok and not result.timed_out and "is not defined" in result.stderr_tail \
                    and not job.cancel.is_set():
                result = self.sandbox.run(self._gem_helpers()[2] + "\n" + job.code, stdin, cancel=job.cancel)
                retried = True
        verdict = None if _passes(result, expected) else _test_failure(result, index, expected)
        with self._lock:
            job.retried |= retried
            if verdict is None:
                job.passed += 1
            elif not result.extra.get("cancelled") and (job.failure is None or pos < job.failure[0]):
                job.failure = (pos, verdict)
                job.cancel.set()

    def grade_many(self, responses: list[str], tests_list: list[dict]) -> list[Verdict]:
        """Grade programs in parallel across `workers` threads; each stops at its first failing test."""
        if len(responses) != len(tests_list):
            raise ValueError(f"{len(responses)} responses but {len(tests_list)} test sets")
        prepared = [self.prepare(r, t) for r, t in zip(responses, tests_list)]
        queue: deque[tuple[_Job, int]] = deque(
            (job, pos) for job in prepared if isinstance(job, _Job) for pos in range(len(job.tests))
        )
        if queue:
            self.sandbox.start()

        def worker() -> None:
            while True:
                with self._lock:
                    if not queue:
                        return
                    job, pos = queue.popleft()
                if not job.cancel.is_set():
                    self._run_test(job, pos)

        n_threads = min(self.workers, len(queue))
        if n_threads:
            with ThreadPoolExecutor(n_threads, thread_name_prefix="code-grader") as pool:
                for f in [pool.submit(worker) for _ in range(n_threads)]:
                    f.result()
        return [p if isinstance(p, Verdict) else self._verdict(p) for p in prepared]

    def grade(self, response: str, tests: dict) -> Verdict:
        return self.grade_many([response], [tests])[0]

    def _verdict(self, job: _Job) -> Verdict:
        common = {"tests_total": job.total_tests, "tests_selected": len(job.tests), "tests_passed": job.passed,
                  "retried_with_base_imports": job.retried, "isolation": self.sandbox.report.get("isolation")}
        if job.failure is None:
            return Verdict.passed(**common)
        v = job.failure[1]
        return Verdict(v.score, v.correct, v.verdict, {**common, **v.details})


def _passes(result: RunResult, expected: str) -> bool:
    return result.ok and result.stdout.strip() == expected.strip()


def _test_failure(result: RunResult, index: int, expected: str) -> Verdict:
    details = {
        "failed_test": index,
        "returncode": result.returncode,
        "signal": result.signal,
        "wall_s": round(result.wall_s, 4),
        "stdout_tail": result.stdout[-TAIL:],
        "stderr_tail": result.stderr_tail[-TAIL:],
    }
    if result.timed_out:
        return Verdict.failed(TIMEOUT, reason="time_limit", **details)
    if result.signal == signal.SIGXCPU:
        return Verdict.failed(TIMEOUT, reason="cpu_limit", **details)
    if result.output_limited:
        return Verdict.failed(ERROR, reason="output_limit", **details)
    if result.setup_error:
        return Verdict.failed(ERROR, reason="sandbox_setup", error=result.setup_error, **details)
    if result.returncode != 0:
        return Verdict.failed(ERROR, reason="runtime_error" if result.returncode else "killed", **details)
    return Verdict.failed(FAIL, reason="wrong_output", expected_tail=expected[-TAIL:], **details)
