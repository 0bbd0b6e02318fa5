"""Code-grading throughput: our sandboxed grader vs GEM's own CodeEnv, side by side on the same items.

Items: HumanEval's 164 problems as stdin/stdout code items (tests/fixtures/datasets.py), each graded
with its canonical solution and with a deliberately broken one (328 programs, ~1170 tests). Both
graders run pinned to the same 2 CPU cores. GEM steps one CodeEnv item after another (its own thread
pool runs an item's tests in parallel); ours grades the batch with `CodeGrader.grade_many` (2 workers,
tests in parallel, a program stops at its first failing test). Verdicts must be identical.

Our grader also runs side by side in its sandbox configurations, interleaved `--layer-repeats` times (best of each
kept, as the machine is shared): namespaces alone (the sandbox before its Landlock + seccomp layer), namespaces with
the layer (the default), and the layer without namespaces (where the OS refuses them; needs a Python installation
the sandbox uid can reach, so it is skipped as root with Python under /root). Each also runs a trivial program 100
times in a row, whose per-run time is what the layer adds to. The layer's cost must stay within 10%.

    python bench/bench_code_grading.py [--cores 2] [--limit 164] [--repeats 1] [--layer-repeats 3]

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
from stages.envs.sandbox import Sandbox, SandboxError, SandboxLimits
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


CONFIGS = {  # name -> Sandbox options
    "namespaces (no Landlock/seccomp layer)": {"isolation": "namespaces", "confine": False},
    "namespaces + Landlock + seccomp": {"isolation": "namespaces", "confine": True},
    "Landlock + seccomp, no namespaces": {"isolation": "none", "confine": True},
}


def run_ours(responses: list[str], tests: list[dict], workers: int, **options) -> tuple[float, list[bool], dict]:
    with Sandbox(SandboxLimits(), **options) as sandbox:  # GEM's 10 s per test
        grader = CodeGrader(sandbox, workers=workers)
        grader.grade("```python\nprint(1)\n```", {"inputs": [""], "outputs": ["1"]})  # warm GEM helpers
        start = time.perf_counter()
        verdicts = grader.grade_many(responses, [{"inputs": t["inputs"], "outputs": t["outputs"]} for t in tests])
        elapsed = time.perf_counter() - start
        report = dict(sandbox.report)
    runs = sum(v.details.get("tests_passed", 0) + (not v.correct) for v in verdicts)
    return elapsed, [v.correct for v in verdicts], {"isolation": report, "test_runs_approx": runs}


def run_latency_ms(options: dict, runs: int = 100) -> float:
    """Milliseconds per run of a trivial program (start to collected output), one run at a time."""
    with Sandbox(SandboxLimits(), **options) as sandbox:
        sandbox.run("print(input())", "x\n")
        start = time.perf_counter()
        for _ in range(runs):
            sandbox.run("print(input())", "x\n")
        return (time.perf_counter() - start) / runs * 1000


def layer_configurations(responses, tests, workers: int, expected: list[bool], repeats: int) -> dict:
    """Seconds of each sandbox configuration (best of `repeats` interleaved runs) and its ratio to namespaces alone."""
    times: dict[str, list[float]] = {name: [] for name in CONFIGS}
    latency: dict[str, list[float]] = {name: [] for name in CONFIGS}
    out: dict[str, dict] = {}
    for _ in range(repeats):
        for name, options in CONFIGS.items():
            if "skipped" in out.get(name, {}):
                continue
            try:
                elapsed, verdicts, extra = run_ours(responses, tests, workers, **options)
            except SandboxError as e:
                out[name] = {"skipped": str(e)[:300]}
                continue
            if verdicts != expected:
                raise SystemExit(f"{name}: verdicts differ from GEM's")
            times[name].append(elapsed)
            latency[name].append(run_latency_ms(options))
            out[name] = {"isolation": extra["isolation"].get("isolation"), "options": options}
    base = min(times[next(iter(CONFIGS))])
    for name, t in times.items():
        if t:
            out[name].update(seconds=min(t), all_seconds=t, programs_per_s=round(len(responses) / min(t), 2),
                             relative_to_namespaces_alone=round(min(t) / base, 3),
                             ms_per_trivial_run=round(min(latency[name]), 2), all_ms_per_trivial_run=latency[name])
    return out


def layers_markdown(configs: dict) -> str:
    rows = ["\n## The sandbox's layers side by side (same programs, interleaved runs, best kept)\n",
            "| configuration | isolation | seconds (best) | programs/s | time vs namespaces alone | every run (s) | "
            "ms per trivial run (best of 100-run blocks) |", "|---|---|---|---|---|---|---|"]
    for name, c in configs.items():
        if "skipped" in c:
            rows.append(f"| {name} | skipped: {c['skipped'][:120]} | | | | | |")
        else:
            rows.append(f"| {name} | {c['isolation']} | {c['seconds']:.1f} | {c['programs_per_s']} | "
                        f"{c['relative_to_namespaces_alone']:.3f} | {', '.join(f'{t:.1f}' for t in c['all_seconds'])} | "
                        f"{c['ms_per_trivial_run']:.1f} |")
    return "\n".join(rows) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--limit", type=int, default=164, help="HumanEval problems to use (x2 programs)")
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--layer-repeats", type=int, default=3, help="interleaved runs of each sandbox configuration")
    ap.add_argument("--out", type=Path, default=RESULTS, help="where code_grading.json and .md go")
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
        "configurations": layer_configurations(responses, tests, len(cpus), v_ours, args.layer_repeats),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "code_grading.json").write_text(json.dumps(result, indent=2) + "\n")
    md = (
        "# Code grading throughput (HumanEval as stdin/stdout items)\n\n"
        f"{n} programs ({n // 2} canonical + {n // 2} broken), {result['tests_total']} tests, {len(cpus)} cores, "
        f"identical verdicts ({result['passed_programs']} pass).\n\n"
        "| grader | seconds | programs/s |\n|---|---|---|\n"
        f"| GEM 0.1.0 CodeEnv, sequential over items | {result['gem_seconds']:.1f} | {result['gem_programs_per_s']} |\n"
        f"| stages.envs CodeGrader ({len(cpus)} workers, sandboxed) | {result['ours_seconds']:.1f} | "
        f"{result['ours_programs_per_s']} |\n\n"
        f"Speedup: **{result['speedup']}x**. Isolation: {result['isolation'].get('isolation')}. "
        f"Load average at the end: {result['machine']['load_avg_at_end']} (shared machine; both graders ran "
        "in the same process, one after the other).\n"
    )
    md += layers_markdown(result["configurations"])
    (args.out / "code_grading.md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
