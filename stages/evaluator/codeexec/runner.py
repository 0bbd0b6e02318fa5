"""Check programs run in the project's sandbox, and the metric functions lm-eval's code task configs call.

``pass_at_k`` and ``pass_at_1`` take the arguments lm-eval's ``humaneval/utils.pass_at_k`` and
``mbpp/utils.pass_at_1`` take and return what they return; like HF's ``code_eval`` (which those call) each check
program is ``candidate + "\\n" + test`` and pass@k is the unbiased estimator over a document's candidates. The
difference is where the program runs: in ``stages.envs``' sandbox (own namespaces, no network, read-only file system,
clean environment, resource limits), through ``harness.py``, with ``code_eval``'s 3 s limit inside the program and a
wall-clock limit around the whole run (``code_eval`` kills its worker one second after the limit; here two: the
harness's own start-up is in that time).

Every outcome is kept by program (``outcome_of``) so the evaluator can put it in the item records.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import math
import os
import secrets
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from stages.envs.sandbox import RunResult, Sandbox, SandboxLimits

TIMEOUT_S = 3.0  # HF code_eval's default timeout, which lm-eval's humaneval and mbpp metrics use
HARNESS = (Path(__file__).with_name("harness.py")).read_text(encoding="utf-8")
PASSED, TIMED_OUT = "passed", "timed out"


def check_program(candidate: str, test: str) -> str:
    """The program HF's code_eval runs for one candidate and one reference test."""
    return candidate + "\n" + test


def _key(program: str) -> str:
    return hashlib.sha256(program.encode("utf-8", errors="surrogatepass")).hexdigest()


class CodeRunner:
    """Runs check programs in one sandbox (thread-safe) and remembers each program's outcome."""

    def __init__(self, timeout_s: float = TIMEOUT_S, sandbox: Sandbox | None = None):
        self.timeout_s = timeout_s
        self.limits = SandboxLimits(wall_s=timeout_s + 2.0, cpu_s=math.ceil(timeout_s) + 2)
        self.sandbox = sandbox or Sandbox(self.limits)
        self._outcomes: dict[str, str] = {}
        self._lock = threading.Lock()

    @property
    def isolation(self) -> str | None:
        """The sandbox's layers ("namespaces+landlock+seccomp", ..., see sandbox/isolation.py); None before the first
        run."""
        return self.sandbox.report.get("isolation")

    def run(self, program: str) -> str:
        """"passed", "timed out" or "failed: <why>" for one check program (cached by program text)."""
        key = _key(program)
        with self._lock:
            if key in self._outcomes:
                return self._outcomes[key]
        nonce = secrets.token_hex(16)
        job = json.dumps({"program": program, "timeout": self.timeout_s, "nonce": nonce})
        outcome = _outcome(self.sandbox.run(HARNESS, job, self.limits), nonce)
        with self._lock:
            self._outcomes[key] = outcome
        return outcome

    def run_many(self, programs: Sequence[str]) -> list[str]:
        if len(programs) <= 1:
            return [self.run(p) for p in programs]
        with ThreadPoolExecutor(min(len(programs), len(os.sched_getaffinity(0)))) as pool:
            return list(pool.map(self.run, programs))

    def outcome_of(self, program: str) -> str | None:
        with self._lock:
            return self._outcomes.get(_key(program))

    def close(self) -> None:
        self.sandbox.close()


def _outcome(result: RunResult, nonce: str) -> str:
    for line in result.stdout.splitlines():
        if line.startswith(nonce):
            try:
                return str(json.loads(line[len(nonce):]))
            except ValueError:
                break
    if result.timed_out:
        return TIMED_OUT  # code_eval: a worker still alive a second after the limit is killed, "timed out"
    why = result.setup_error or (f"signal {result.signal}" if result.signal else f"exit code {result.returncode}")
    tail = result.stderr_tail.strip().splitlines()[-1:] or [""]
    return f"failed: no verdict from the program's run ({why}) {tail[0]}".rstrip()


_RUNNER: CodeRunner | None = None
_RUNNER_PID = -1
_RUNNER_LOCK = threading.Lock()


def default_runner() -> CodeRunner:
    """The process-wide runner (its sandbox starts on the first program; closed at exit)."""
    global _RUNNER, _RUNNER_PID
    with _RUNNER_LOCK:
        if _RUNNER is None or _RUNNER_PID != os.getpid():
            _RUNNER, _RUNNER_PID = CodeRunner(), os.getpid()
        return _RUNNER


def _close_default() -> None:
    if _RUNNER is not None and _RUNNER_PID == os.getpid():
        _RUNNER.close()


atexit.register(_close_default)


def estimate_pass_at_k(n: int, c: int, k: int) -> float:
    """1 - C(n - c, k) / C(n, k): code_eval's unbiased pass@k for one document with n candidates, c correct."""
    if n - c < k:
        return 1.0
    return 1.0 - math.prod(1.0 - k / i for i in range(n - c + 1, n + 1))


def _pass_rates(references: Sequence[str], predictions: Sequence[Any], ks: Sequence[int]) -> dict[str, float]:
    """code_eval's ``compute``: the mean over documents of pass@k, for every k no document has fewer candidates for."""
    runner = default_runner()
    per_doc = []
    for candidates, test in zip(predictions, references):
        outcomes = runner.run_many([check_program(c, test) for c in candidates])
        per_doc.append((len(outcomes), sum(o == PASSED for o in outcomes)))
    return {f"pass@{k}": sum(estimate_pass_at_k(n, c, k) for n, c in per_doc) / len(per_doc)
            for k in ks if per_doc and all(n >= k for n, _ in per_doc)}


def pass_at_k(references: list[str], predictions: list[list[str]], k: list[int] | int | None = None) -> dict[str, float]:
    """lm-eval's ``humaneval/utils.pass_at_k`` (``{"pass@1": ...}``), the programs run in the sandbox."""
    if k is None:
        raise ValueError("pass_at_k needs k")
    return _pass_rates(references, predictions, [k] if isinstance(k, int) else list(k))


def pass_at_1(references: str | list[str], predictions: str | list[list[str]]) -> float:
    """lm-eval's ``mbpp/utils.pass_at_1``, the programs run in the sandbox."""
    if isinstance(references, str):
        references = [references]
    if isinstance(predictions[0], str):
        predictions = [[p] for p in predictions]  # type: ignore[misc]
    return _pass_rates(references, predictions, [1])["pass@1"]
