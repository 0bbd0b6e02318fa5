"""Math grading works off the main thread (verl's reward workers) with a hard wall-clock limit."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from stages.envs.math_grader import MathGrader

# sympy.simplify inside GEM's grader (a step GEM bounds only from outside, in MathEnv.step) takes many seconds here
SLOW = ("\\boxed{(x+y+1)^9*(x-y+2)^9*(x+2*y+3)^9*(3*x-y+7)^9}", "(x-y-3)^9*(x+y)^9*(y-x+5)^9*(2*x+y-4)^9")


@pytest.mark.timeout(120)
def test_grading_from_threads_with_timeouts_and_recovery(gem):
    from gem.envs.math_env import MathEnv

    grader = MathGrader(workers=2, timeout_s=3.0)
    try:
        needs_math_verify = ("\\boxed{${1,2,3,4}$}", "${1,3} \\cup {2,4}$")  # reaches GEM's SIGALRM-guarded path
        # GEM's own grader off the main thread
        with pytest.raises(ValueError, match="signal only works in main thread"), ThreadPoolExecutor(1) as pool:
            pool.submit(MathEnv.check_correct, *needs_math_verify).result()
        with ThreadPoolExecutor(4) as pool:
            verdicts = list(pool.map(lambda c: grader.grade(*c), [needs_math_verify, SLOW, ("\\boxed{3}", "3"),
                                                                   ("\\boxed{4}", "3")] * 2))
        assert [v.verdict for v in verdicts] == ["pass", "timeout", "pass", "fail"] * 2
        assert verdicts[1].details["reason"] == "grading_timeout" and verdicts[1].score == 0.0
        assert threading.current_thread() is threading.main_thread()
        assert grader.grade("\\boxed{\\frac{1}{2}}", ["0.5"]).correct  # killed workers were replaced
    finally:
        grader.close()
    assert all(w.proc.poll() is not None for w in grader._all) or not grader._all
