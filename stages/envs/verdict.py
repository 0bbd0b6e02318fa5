"""The one result type every grader returns."""

from __future__ import annotations

from dataclasses import dataclass, field

PASS, FAIL, TIMEOUT, ERROR = "pass", "fail", "timeout", "error"


@dataclass(frozen=True)
class Verdict:
    """score: the reward (1.0 or 0.0); verdict: pass | fail (wrong, or no answer/code found) |
    timeout (a limit on time was hit) | error (crash, resource limit, grader exception); details: what a
    person needs to see why (extracted answer, failing test, stdout/stderr tails, ...)."""

    score: float
    correct: bool
    verdict: str
    details: dict = field(default_factory=dict)

    @classmethod
    def passed(cls, **details: object) -> Verdict:
        return cls(1.0, True, PASS, dict(details))

    @classmethod
    def failed(cls, verdict: str = FAIL, **details: object) -> Verdict:
        return cls(0.0, False, verdict, dict(details))
