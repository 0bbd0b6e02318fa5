"""The evaluator scores code in the sandbox end to end: a real run on the tiny model with the project's HumanEval task
(lm-eval's in-process code execution never loaded), and manifests with tier B's code tasks validate without
``allow_unsafe_code``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from stages.core.results import EvalResults
from stages.evaluator.items import read_records
from tests.evaluator.conftest import manifest, network_blocked, run_in_process

REPO = Path(__file__).resolve().parents[2]
LM_EVAL_CODE_METRICS = ("lm_eval.tasks.humaneval.utils", "lm_eval.tasks.mbpp.utils")


def test_fllm_humaneval_run_scores_in_the_sandbox(tmp_path, tiny_model_dir):
    assert "HF_ALLOW_CODE_EVAL" not in os.environ
    for name in LM_EVAL_CODE_METRICS:
        sys.modules.pop(name, None)
    out = tmp_path / "out"
    params = {"tasks": ["fllm_humaneval"], "limit": 3, "greedy": {"temperature": 0.0, "max_new_tokens": 24},
              "batch_size": 3}
    m = manifest(tmp_path / "m.json", "tiny.code", {"model": (tiny_model_dir, "hf_model")}, params, out)
    with network_blocked():
        assert run_in_process(m) == 0, (out / "manifest.json").read_text()
    assert "HF_ALLOW_CODE_EVAL" not in os.environ
    assert not [n for n in LM_EVAL_CODE_METRICS if n in sys.modules], "lm-eval's in-process code metric was loaded"

    results = EvalResults.model_validate_json((out / "results.json").read_text())
    assert results.protocol["code_execution"] == "sandbox"
    score = next(s for s in results.scores if s.task == "fllm_humaneval")
    assert (score.metric, score.capability, score.n) == ("pass@1,create_test", "code", 3)
    records = read_records(out / results.samples_files["fllm_humaneval"])
    assert [r.item_id for r in records] == ["0", "1", "2"]
    for r in records:
        assert r.metric == "pass@1,create_test" and r.correct is not None
        assert r.extra["code_execution"] == "sandbox"
        [outcome] = r.extra["code_results"]
        assert outcome == "passed" or outcome.startswith(("failed", "timed out"))
        assert r.correct == (outcome == "passed")
    record = json.loads((out / "manifest.json").read_text())
    provenance = record["provenance"]["engine_config"]
    assert provenance["code_execution"] == "sandbox" and provenance["code_tasks"] == {"fllm_humaneval": "sandbox"}
    assert provenance["code_timeout_s"] == 3.0 and provenance["sandbox_isolation"] == record["summary"]["isolation"]
    assert record["summary"]["isolation_contained"] and "isolation" in (out / "summary.md").read_text()


def validate(tmp_path: Path, inputs: dict, params: dict) -> subprocess.CompletedProcess:
    m = manifest(tmp_path / "m.json", "code.validate", inputs, params, tmp_path / "out")
    env = dict(os.environ, PYTHONPATH=str(REPO), HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1")
    env.pop("HF_ALLOW_CODE_EVAL", None)
    return subprocess.run([sys.executable, "-m", "stages.evaluator.cli", "validate", "--manifest", str(m)], cwd=REPO, check=False,
                          env=env, capture_output=True, text=True, timeout=300)


def test_tier_b_code_tasks_need_no_unsafe_switch(tmp_path, tiny_model_dir):
    model = {"model": (tiny_model_dir, "hf_model")}
    for params in ({"suite": "forgetting", "tiers": ["A", "B"]},
                   {"tasks": ["humaneval_instruct", "mbpp", "humaneval", "mbpp_plus_instruct", "fllm_humaneval"]}):
        res = validate(tmp_path, model, params)
        assert res.returncode == 0, res.stderr[-2000:]
        assert "allow_unsafe_code" not in res.stderr
    assert not (tmp_path / "out").exists()

