"""Code-grading throughput: our sandboxed grader vs GEM's own CodeEnv, side by side on the same items.

Items: HumanEval's 164 problems as stdin/stdout code items (tests/fixtures/datasets.py), each graded
with its canonical solution and with a deliberately broken one (328 programs, ~1170 tests). Both
graders run pinned to the same 2 CPU cores. GEM steps one CodeEnv item after another (its own thread
pool runs an item's tests in parallel); ours grades the batch with `CodeGrader.grade_many` (2 workers,
tests in parallel, a program stops at its first failing test). Verdicts must be identical.

    python bench/bench_code_grading.py [--cores 2] [--limit 164] [--repeats 1]

Writes bench/results/code_grading.json and code_grading.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from stages.envs.code_grader import CodeGrader
from stages.envs.gem_bridge import gem_step, import_gem
from stages.envs.sandbox import Sandbox, SandboxLimits
from tests.fixtures.datasets import humaneval_code_items

RESULTS = REPO / "bench" / "results"


def programs(limit: int) -> tuple[list[str], list[dict]]:
    items = humaneval_code_items()[:limit]
    responses = [it["solution"] for it in items] + [it["broken_solution"] for it in items]
    tests = [it["tests"] for it in items] * 2
    return responses, tests


def run_gem(responses: list[str], tests: list[dict]) -> tuple[float, list[bool]]:
    import datasets

    gem = import_gem()
    env = gem.make("eval:CodeContest", dataset=datasets.Dataset.from_list(
        [{"problem": "p", "tests": {"inputs": ["1"], "outputs": ["1"]}}]))
    cwd = os.getcwd()
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)  # GEM makes its temp folders in the current directory
        try:
            start = time.perf_counter()
            verdicts = []
            for response, t in zip(responses, tests):
                env.unwrapped.tests = t
                verdicts.append(gem_step(env, response)[0] > 0)
            elapsed = time.perf_counter() - start
        finally:
            os.chdir(cwd)
    return elapsed, verdicts


def run_ours(responses: list[str], tests: list[dict], workers: int) -> tuple[float, list[bool], dict]:
    with Sandbox(SandboxLimits()) as sandbox:  # GEM's 10 s per test
        grader = CodeGrader(sandbox, workers=workers)
        grader.grade("```python\nprint(1)\n```", {"inputs": [""], "outputs": ["1"]})  # warm GEM helpers
        start = time.perf_counter()
        verdicts = grader.grade_many(responses, [{"inputs": t["inputs"], "outputs": t["outputs"]} for t in tests])
        elapsed = time.perf_counter() - start
        report = dict(sandbox.report)
    runs = sum(v.details.get("tests_passed", 0) + (not v.correct) for v in verdicts)
    return elapsed, [v.correct for v in verdicts], {"isolation": report, "test_runs_approx": runs}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--limit", type=int, default=164, help="HumanEval problems to use (x2 programs)")
    ap.add_argument("--repeats", type=int, default=1)
    args = ap.parse_args()
    cpus = sorted(os.sched_getaffinity(0))[: args.cores]
    os.sched_setaffinity(0, cpus)  # children (GEM's subprocesses, our zygote) inherit the pinning
    os.environ["PATH"] = os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"]  # GEM runs `python`
    responses, tests = programs(args.limit)
    gem_times, our_times, extra = [], [], {}
    for _ in range(args.repeats):
        t_gem, v_gem = run_gem(responses, tests)
        t_ours, v_ours, extra = run_ours(responses, tests, workers=len(cpus))
        gem_times.append(t_gem)
        our_times.append(t_ours)
        mismatches = [i for i, (a, b) in enumerate(zip(v_gem, v_ours)) if a != b]
        if mismatches:
            raise SystemExit(f"verdicts differ on programs {mismatches[:10]}")
    n = len(responses)
    result = {
        "programs": n,
        "tests_total": sum(len(t["inputs"]) for t in tests),
        "cores": len(cpus),
        "gem_seconds": min(gem_times),
        "ours_seconds": min(our_times),
        "gem_programs_per_s": round(n / min(gem_times), 2),
        "ours_programs_per_s": round(n / min(our_times), 2),
        "speedup": round(min(gem_times) / min(our_times), 2),
        "identical_verdicts": True,
        "passed_programs": sum(v_ours),
        "repeats": args.repeats,
        "gem_all_seconds": gem_times,
        "ours_all_seconds": our_times,
        "machine": {"platform": platform.platform(), "python": platform.python_version(),
                    "load_avg_at_end": os.getloadavg()},
        **extra,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "code_grading.json").write_text(json.dumps(result, indent=2) + "\n")
    md = (
        "# Code grading throughput (HumanEval as stdin/stdout items)\n\n"
        f"{n} programs ({n // 2} canonical + {n // 2} broken), {result['tests_total']} tests, {len(cpus)} cores, "
        f"identical verdicts ({result['passed_programs']} pass).\n\n"
        "| grader | seconds | programs/s |\n|---|---|---|\n"
        f"| GEM 0.1.0 CodeEnv, sequential over items | {result['gem_seconds']:.1f} | {result['gem_programs_per_s']} |\n"
        f"| stages.envs CodeGrader ({len(cpus)} workers, sandboxed) | {result['ours_seconds']:.1f} | "
        f"{result['ours_programs_per_s']} |\n\n"
        f"Speedup: **{result['speedup']}x**. Isolation: {result['isolation'].get('mode')}. "
        f"Load average at the end: {result['machine']['load_avg_at_end']} (shared machine; both graders ran "
        "in the same process, one after the other).\n"
    )
    (RESULTS / "code_grading.md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
