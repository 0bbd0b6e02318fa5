"""Math grading with GEM's verdicts, safe to call from any thread, with a hard wall-clock limit.

Each call is sent to a worker process (math_worker.py) that runs GEM's grader on its main thread,
where GEM's own SIGALRM guards work. The pool enforces an overall limit (default 5 s; GEM's MathEnv uses
1 s, which under load marks slow-but-correct answers wrong: pass timeout_s=1 to reproduce it exactly).
A worker that overruns is killed and replaced, and the answer gets a `timeout` verdict (score 0, like GEM).
"""

from __future__ import annotations

import json
import os
import queue
import select
import subprocess
import sys
import threading
import time
from pathlib import Path

from stages.envs.verdict import ERROR, FAIL, TIMEOUT, Verdict

WORKER = Path(__file__).with_name("math_worker.py")
START_TIMEOUT_S = 120.0


class _Worker:
    def __init__(self, grader_file: str):
        self.proc = subprocess.Popen(
            [sys.executable, "-I", str(WORKER), grader_file],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            start_new_session=True,
        )
        self.fresh = True

    def _readline(self, timeout: float) -> str | None:
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], max(0.0, timeout))
        return self.proc.stdout.readline() if ready else None

    def wait_ready(self) -> None:
        line = self._readline(START_TIMEOUT_S)
        if not line or not json.loads(line).get("ready"):
            self.kill()
            raise RuntimeError("math grading worker failed to start (is gem-llm and math-verify installed?)")
        self.fresh = False

    def ask(self, request: dict, timeout: float) -> dict | None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        line = self._readline(timeout)
        return json.loads(line) if line else None

    def kill(self) -> None:
        try:
            os.killpg(self.proc.pid, 9)
        except (ProcessLookupError, PermissionError):
            pass
        self.proc.wait()


class MathGrader:
    """A small pool of math workers shared by all threads of a process."""

    def __init__(self, workers: int = 2, timeout_s: float = 5.0):
        if workers < 1 or timeout_s <= 0:
            raise ValueError(f"MathGrader needs workers >= 1 and timeout_s > 0, got {workers}, {timeout_s}")
        from stages.envs.gem_bridge import gem_file_path, missing_gem_dependencies

        missing = missing_gem_dependencies()
        if missing:
            raise ImportError("math grading needs: " + ", ".join(missing))
        self.grader_file = gem_file_path("utils/math_grader.py")
        self.timeout_s = timeout_s
        self._idle: queue.LifoQueue[_Worker | None] = queue.LifoQueue()
        for _ in range(workers):
            self._idle.put(None)  # a slot; the worker starts on first use
        self._all: list[_Worker] = []
        self._lock = threading.Lock()

    def _take(self) -> _Worker:
        worker = self._idle.get()
        if worker is None or worker.proc.poll() is not None:
            try:
                worker = _Worker(self.grader_file)
                worker.wait_ready()
            except BaseException:
                self._idle.put(None)
                raise
            with self._lock:
                self._all.append(worker)
        return worker

    def grade(self, response: str, answers: str | list[str]) -> Verdict:
        answers = [answers] if isinstance(answers, str) else list(answers)
        worker = self._take()
        start = time.monotonic()
        try:
            reply = worker.ask({"response": response, "answers": answers}, self.timeout_s)
        except (BrokenPipeError, OSError, ValueError) as exc:
            reply, worker_error = None, exc
        else:
            worker_error = None
        elapsed = round(time.monotonic() - start, 4)
        if reply is None:
            worker.kill()
            self._idle.put(None)
            if worker_error is not None:
                return Verdict.failed(ERROR, reason="grader_worker_died", error=str(worker_error))
            return Verdict.failed(TIMEOUT, reason="grading_timeout", timeout_s=self.timeout_s)
        self._idle.put(worker)
        details = {"extracted": reply["extracted"], "grade_s": elapsed}
        if reply["error"]:
            return Verdict.failed(ERROR, reason="grader_exception", error=reply["error"], **details)
        if reply["correct"]:
            return Verdict.passed(**details)
        return Verdict.failed(FAIL, reason="no_boxed_answer" if reply["extracted"] is None else "wrong_answer",
                              **details)

    def close(self) -> None:
        with self._lock:
            for worker in self._all:
                if worker.proc.poll() is None:
                    worker.kill()
            self._all.clear()
