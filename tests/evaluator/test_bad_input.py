"""Bad input is refused before anything runs: exit code 2, a message naming the problem, nothing written."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from stages.core.results import EvalResults
from tests.evaluator.conftest import manifest

REPO = Path(__file__).resolve().parents[2]
MC = {"tasks": ["fllm_nq_mc"], "limit": 3}


def run_cli(m: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO), HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1")
    return subprocess.run([sys.executable, "-m", "stages.evaluator.cli", "--manifest", str(m)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)


def refused(tmp: Path, inputs: dict, params: dict, *fragments: str) -> None:
    out = tmp / "out"
    res = run_cli(manifest(tmp / "m.json", "bad.input", inputs, params, out))
    assert res.returncode == 2, res.stderr[-2000:]
    for fragment in fragments:
        assert fragment in res.stderr, res.stderr[-2000:]
    assert not out.exists(), "nothing may be written for invalid input"


@pytest.fixture
def ok_inputs(tiny_model_dir, benchmarks_dir):
    return {"model": (tiny_model_dir, "hf_model"), "benchmarks": (benchmarks_dir, "benchmark_data")}


def test_unknown_task_name(tmp_path, ok_inputs):
    refused(tmp_path, ok_inputs, {"tasks": ["fllm_nq_mc", "no_such_task_xyz"]}, "$.spec.params.tasks",
            "unknown lm-eval task(s): no_such_task_xyz")


def test_model_folder_without_config(tmp_path, benchmarks_dir):
    empty = tmp_path / "empty-model"
    empty.mkdir()
    refused(tmp_path, {"model": (empty, "hf_model"), "benchmarks": (benchmarks_dir, "benchmark_data")}, MC,
            "$.spec.inputs.model", "has no config.json")


def test_model_folder_that_does_not_load(tmp_path, tiny_model_dir, benchmarks_dir):
    broken = tmp_path / "broken-model"
    shutil.copytree(tiny_model_dir, broken)
    (broken / "config.json").write_text("{not json")
    refused(tmp_path, {"model": (broken, "hf_model"), "benchmarks": (benchmarks_dir, "benchmark_data")}, MC,
            "does not load", "config.json is not valid JSON")
    (broken / "config.json").write_text((tiny_model_dir / "config.json").read_text())
    for weights in broken.glob("*.safetensors"):
        weights.unlink()
    refused(tmp_path, {"model": (broken, "hf_model"), "benchmarks": (benchmarks_dir, "benchmark_data")}, MC,
            "has no weights")


def test_base_results_from_a_different_item_subset(tmp_path, ok_inputs):
    base = tmp_path / "base"
    base.mkdir()
    doc = EvalResults(run_id="tiny.base", model_uri="m", protocol={"tasks": "fllm_nq_mc", "limit": 5})
    (base / "results.json").write_text(doc.model_dump_json(by_alias=True))
    inputs = {**ok_inputs, "base_results": (base / "results.json", "eval_results")}
    refused(tmp_path, inputs, MC, "$.spec.inputs.base_results", "different item subset", "limit = 5 there, 3 here")
    doc.protocol = {"tasks": "fllm_gsm8k", "limit": 3}
    (base / "results.json").write_text(doc.model_dump_json(by_alias=True))
    refused(tmp_path, inputs, MC, "was not evaluated on fllm_nq_mc")
    (base / "results.json").write_text(json.dumps({"run_id": "x"}))
    refused(tmp_path, inputs, MC, "is not evaluator results")


def test_suites_without_their_inputs(tmp_path, tiny_model_dir, fixtures_dir, ok_inputs):
    model = {"model": (tiny_model_dir, "hf_model")}
    refused(tmp_path, model, MC, "$.spec.inputs.benchmarks", "`benchmarks` input")
    refused(tmp_path, model, {"suite": "target"}, "needs target_env_id")
    refused(tmp_path, model, {"suite": "target", "target_env_id": "eval:MATH500"}, "needs the target_data input")
    wrong = {**model, "target_data": (fixtures_dir / "datasets" / "search-eval", "gem_dataset")}
    refused(tmp_path, wrong, {"suite": "target", "target_env_id": "eval:MATH500"}, "$.spec.inputs.target_data")
    refused(tmp_path, {**ok_inputs, "base_model": (tiny_model_dir, "hf_model")}, {"suite": "forgetting", **MC},
            "base_model is used for KL")


def test_an_unset_variable_in_a_judge_path_is_named(tmp_path, ok_inputs):
    os.environ.pop("FLLM_UNSET_JUDGES", None)
    refused(tmp_path, ok_inputs, {**MC, "refusal_classifier": "judge", "judge_model": "$FLLM_UNSET_JUDGES/phi-4"},
            "$.spec.params.judge_model", "environment variable $FLLM_UNSET_JUDGES", "is not set")


def test_path_params_expand_variables_as_inputs_do(monkeypatch, tmp_path):
    """A study plans ``$SCRATCH/...`` judge folders once for every cluster; the stage reads them on the node."""
    from stages.evaluator.local_paths import with_local_paths
    from stages.evaluator.params import EvaluatorParams

    monkeypatch.setenv("FLLM_JUDGES", str(tmp_path))
    written = EvaluatorParams.model_validate({
        **MC, "refusal_classifier": "judge", "judge_model": "$FLLM_JUDGES/phi-4",
        "harmbench_classifier": "${FLLM_JUDGES}/cls",
        "attacks": {"autodan": {"mutate_model": "$FLLM_JUDGES/mutator", "prototypes": "~/prototypes.json"}}})
    assert written.judge_model == "$FLLM_JUDGES/phi-4"  # the spec (and its hash) keeps what the study wrote
    p = with_local_paths(written)
    assert p.judge_model == f"{tmp_path}/phi-4" and p.harmbench_classifier == f"{tmp_path}/cls"
    assert p.attacks.autodan.mutate_model == f"{tmp_path}/mutator"
    assert p.attacks.autodan.prototypes == os.path.expanduser("~/prototypes.json")
    served = with_local_paths(EvaluatorParams.model_validate({**MC, "refusal_classifier": "judge",
                                                               "judge_model": "phi-4"}))
    assert served.judge_model == "phi-4"  # a served model's name stays a name
