"""A math grading worker process: GEM's own math grader, run on its main thread.

GEM's grader (`gem/utils/math_grader.py`, used by MathEnv.check_correct) guards sympy and math-verify
with SIGALRM timers, which only work on a process's main thread; verl calls reward functions from worker
threads. So graders send (response, answers) here over stdin as JSON lines and read the verdict from
stdout; the parent enforces an overall wall-clock limit and kills this process if it is exceeded.

The grader file is loaded by path (argv[1]) rather than through `import gem`, so a restart after a
timeout costs only sympy's import, not GEM's (which also imports reasoning-gym). Standard library only.
"""

from __future__ import annotations

import importlib.util
import json
import sys


def main() -> None:
    spec = importlib.util.spec_from_file_location("_fllm_gem_math_grader", sys.argv[1])
    grader = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(grader)  # type: ignore[union-attr]
    out = sys.stdout
    out.write('{"ready": true}\n')
    out.flush()
    for line in sys.stdin:
        req = json.loads(line)
        reply: dict = {"extracted": None, "correct": False, "error": None}
        try:
            reply["extracted"] = grader.extract_answer(req["response"])
            # Same loop as MathEnv.check_correct: each accepted answer in turn, first match wins.
            for answer in req["answers"]:
                _info, reward = grader.boxed_reward_fn(req["response"], answer, fast=False,
                                                       correct_reward=1, incorrect_reward=0)
                if reward:
                    reply["correct"] = True
                    break
        except Exception as exc:  # noqa: BLE001 - reported as an error verdict
            reply["error"] = f"{type(exc).__name__}: {exc}"[:500]
        out.write(json.dumps(reply) + "\n")
        out.flush()


if __name__ == "__main__":
    main()
