"""One grading interface for all three domains: `grade` for one response, `grade_many` for a batch.

`Graders` owns the expensive parts (math worker processes, the code sandbox) and is thread-safe; the
module-level functions use one default instance per process, created on first use and closed at exit.
Everything here works from any thread: no SIGALRM anywhere on the caller's side.
"""

from __future__ import annotations

import atexit
import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from stages.envs.ground_truth import normalize_ground_truth
from stages.envs.registry import domain_of
from stages.envs.sandbox import SandboxLimits
from stages.envs.verdict import Verdict


@dataclass(frozen=True)
class GradeOptions:
    math_timeout_s: float = 5.0
    math_workers: int = 2
    code_limits: SandboxLimits = field(default_factory=SandboxLimits)
    code_workers: int | None = None  # default: the CPUs this process may use
    code_max_tests: int = 12
    gem_blocklist: bool = True
    isolation: str = "auto"  # sandbox: "auto" | "namespaces" | "none"
    qa_extract: str | None = None  # force "tag"/"boxed"; default: what the ground truth says


class Graders:
    def __init__(self, options: GradeOptions | None = None):
        self.options = options or GradeOptions()
        self._math = None
        self._code = None
        self._lock = threading.Lock()

    @property
    def math(self):
        with self._lock:
            if self._math is None:
                from stages.envs.math_grader import MathGrader

                self._math = MathGrader(self.options.math_workers, self.options.math_timeout_s)
            return self._math

    @property
    def code(self):
        with self._lock:
            if self._code is None:
                from stages.envs.code_grader import CodeGrader
                from stages.envs.sandbox import Sandbox

                o = self.options
                sandbox = Sandbox(o.code_limits, isolation=o.isolation)
                self._code = CodeGrader(sandbox, o.code_workers, o.code_max_tests, o.gem_blocklist)
            return self._code

    def _one(self, domain: str, response: str, gt: dict) -> Verdict:
        if domain == "math":
            return self.math.grade(response, gt["answer"])
        if domain == "qa":
            from stages.envs.qa_grader import grade_qa

            return grade_qa(response, gt["answers"], self.options.qa_extract or gt["extract"])
        return self.code.grade(response, gt["tests"])

    def grade(self, domain_or_env_id: str, response: str, ground_truth: Any) -> Verdict:
        domain = domain_of(domain_or_env_id)
        return self._one(domain, _text(response), normalize_ground_truth(domain, ground_truth))

    def grade_many(
        self, domain_or_env_id: str | Sequence[str], responses: Sequence[str], ground_truths: Sequence[Any]
    ) -> list[Verdict]:
        """Grade a batch; code programs run in parallel in the sandbox, math answers across the workers."""
        n = len(responses)
        if len(ground_truths) != n:
            raise ValueError(f"{n} responses but {len(ground_truths)} ground truths")
        ids = [domain_or_env_id] * n if isinstance(domain_or_env_id, str) else list(domain_or_env_id)
        if len(ids) != n:
            raise ValueError(f"{n} responses but {len(ids)} domains / env ids")
        domains = [domain_of(i) for i in ids]
        gts = [normalize_ground_truth(d, g) for d, g in zip(domains, ground_truths)]
        texts = [_text(r) for r in responses]
        out: list[Verdict | None] = [None] * n
        code_idx = [i for i, d in enumerate(domains) if d == "code"]
        if code_idx:
            verdicts = self.code.grade_many([texts[i] for i in code_idx], [gts[i]["tests"] for i in code_idx])
            for i, v in zip(code_idx, verdicts):
                out[i] = v
        other = [i for i, d in enumerate(domains) if d != "code"]
        if other:
            width = max(1, min(self.options.math_workers, len(other)))
            with ThreadPoolExecutor(width) as pool:
                for i, v in zip(other, pool.map(lambda j: self._one(domains[j], texts[j], gts[j]), other)):
                    out[i] = v
        return out  # type: ignore[return-value]

    def close(self) -> None:
        with self._lock:
            if self._math is not None:
                self._math.close()
                self._math = None
            if self._code is not None:
                self._code.sandbox.close()
                self._code = None


def _text(response: Any) -> str:
    if not isinstance(response, str):
        raise TypeError(f"a response must be a string, got {type(response).__name__}")
    return response


_DEFAULT: Graders | None = None
_DEFAULT_PID = -1  # a forked child must not reuse its parent's worker processes
_DEFAULT_LOCK = threading.Lock()


def default_graders() -> Graders:
    """The process-wide Graders with default options (created on first use)."""
    global _DEFAULT, _DEFAULT_PID
    with _DEFAULT_LOCK:
        if _DEFAULT is None or _DEFAULT_PID != os.getpid():
            _DEFAULT, _DEFAULT_PID = Graders(), os.getpid()
        return _DEFAULT


def close_default_graders() -> None:
    global _DEFAULT
    with _DEFAULT_LOCK:
        if _DEFAULT is not None and _DEFAULT_PID == os.getpid():
            _DEFAULT.close()
        _DEFAULT = None


atexit.register(close_default_graders)


def grade(domain_or_env_id: str, response: str, ground_truth: Any) -> Verdict:
    """Grade one response. `ground_truth`: see stages.envs.ground_truth (raw forms accepted)."""
    return default_graders().grade(domain_or_env_id, response, ground_truth)


def grade_many(
    domain_or_env_id: str | Sequence[str], responses: Sequence[str], ground_truths: Sequence[Any]
) -> list[Verdict]:
    """Grade a batch (one domain/env id for all, or one per response)."""
    return default_graders().grade_many(domain_or_env_id, responses, ground_truths)
