"""The evaluator for real on the tiny model, network blocked, local rows only: each suite from its own manifest,
results that validate against the schema, and sample-level forgetting between two real lm-eval runs.

Runs (each through the real lifecycle, in this process): the base model and a second base run with another seed
and batch size (the noise flip rate); a perturbed copy of the model (a stand-in for a post-trained checkpoint)
compared with them; the policy, safety and target suites (the last with KL to the base).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import jsonschema
import pytest

from stages.core.results import EvalResults
from stages.evaluator.items import read_records
from stages.evaluator.metrics.calibration import calibration, choice_probabilities
from stages.evaluator.metrics.self_bleu import self_bleu_reference
from stages.evaluator.metrics.transitions import transitions
from tests.evaluator.conftest import HARMBENCH_REASON, manifest, network_blocked, run_in_process

TASKS = ["fllm_nq_mc", "fllm_gsm8k_mc", "fllm_gsm8k", "fllm_nq_open"]
LIMIT = 6
COMMON = {"tasks": TASKS, "limit": LIMIT, "greedy": {"temperature": 0.0, "max_new_tokens": 12}, "batch_size": 8}


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("evaluator-runs")


def evaluate(work: Path, name: str, inputs: dict, params: dict, seed: int = 0) -> tuple[Path, EvalResults]:
    out = work / name
    m = manifest(work / f"{name}.json", f"tiny.{name}", inputs, params, out, seed)
    with network_blocked():
        code = run_in_process(m)
    assert code == 0, (out / "manifest.json").read_text() if (out / "manifest.json").exists() else "no manifest"
    doc = json.loads((out / "results.json").read_text())
    jsonschema.validate(doc, EvalResults.model_json_schema(by_alias=True))
    record = json.loads((out / "manifest.json").read_text())
    assert record["status"]["state"] == "succeeded"
    assert set(record["outputs"]) == {"results", "samples"}
    return out, EvalResults.model_validate(doc)


@pytest.fixture(scope="module")
def base_run(work, tiny_model_dir, benchmarks_dir):
    inputs = {"model": (tiny_model_dir, "hf_model"), "benchmarks": (benchmarks_dir, "benchmark_data")}
    return evaluate(work, "base", inputs, {**COMMON, "suite": "forgetting"})


@pytest.fixture(scope="module")
def rerun(work, tiny_model_dir, benchmarks_dir):
    inputs = {"model": (tiny_model_dir, "hf_model"), "benchmarks": (benchmarks_dir, "benchmark_data")}
    return evaluate(work, "base-rerun", inputs, {**COMMON, "suite": "forgetting", "batch_size": 3}, seed=1)


@pytest.fixture(scope="module")
def post_run(work, perturbed_model_dir, benchmarks_dir, base_run, rerun):
    inputs = {"model": (perturbed_model_dir, "hf_model"), "benchmarks": (benchmarks_dir, "benchmark_data"),
              "base_results": (base_run[0] / "results.json", "eval_results"),
              "base_rerun_results": (rerun[0] / "results.json", "eval_results")}
    return evaluate(work, "post", inputs, {**COMMON, "suite": "forgetting"})


def _bits(folder: Path, task: str) -> dict[str, bool | None]:
    return {r.item_id: r.correct for r in read_records(folder / "samples" / f"{task}.jsonl")}


def test_forgetting_suite_on_the_base(base_run):
    out, res = base_run
    assert res.suites == ["forgetting"] and res.engine == "hf" and res.forgetting == []
    assert {s.task for s in res.scores} == set(TASKS)
    assert res.item_selection == {t: f"first:{LIMIT}" for t in TASKS}
    assert res.protocol["tasks"] == ",".join(TASKS) and res.protocol["thinking"] is False
    for task in TASKS:
        recs = read_records(out / res.samples_files[task])
        assert [r.item_id for r in recs] == [str(i) for i in range(LIMIT)]
        assert all(r.correct is not None and r.doc_hash for r in recs)
        if task.endswith("_mc"):
            assert all(len(r.choice_logliks) == 4 and r.label in range(4) for r in recs)
            assert all("<think>\n\n</think>" in r.prompt for r in recs)  # chat template, thinking off
        else:
            assert all(len(r.responses) == 1 and r.response_tokens[0] <= 12 for r in recs)
        acc = next(s.value for s in res.scores if s.task == task and s.metric == recs[0].metric)
        assert acc == pytest.approx(sum(r.score for r in recs) / LIMIT)
    lm_eval = list((out / "lm_eval" / "forgetting").rglob("*"))
    assert any(p.name.startswith("results_") for p in lm_eval)
    assert sum(p.name.startswith("samples_") for p in lm_eval) == len(TASKS)


def test_sample_level_forgetting_between_two_real_runs(post_run, base_run, rerun):
    (post, res), (base, _), (again, _) = post_run, base_run, rerun
    rows = {f.task: f for f in res.forgetting}
    assert set(rows) == set(TASKS) | {"overall"}
    assert res.labels.base_run_id == "tiny.base"
    pooled_b = pooled_c = 0
    for task in TASKS:
        t = transitions(_bits(base, task), _bits(post, task))
        noise = transitions(_bits(base, task), _bits(again, task))
        row = rows[task]
        assert (row.n, row.mcnemar_b, row.mcnemar_c) == (LIMIT, t.forgotten, t.gained)
        assert row.forgetting == pytest.approx(t.forgetting)
        assert row.backward_transfer == pytest.approx(t.backward_transfer)
        assert row.noise_flip_rate == pytest.approx(noise.forgetting)
        assert (row.forgetting_true is not None) == task.endswith("_mc")
        pooled_b, pooled_c = pooled_b + t.forgotten, pooled_c + t.gained
    overall = rows["overall"]
    assert (overall.n, overall.mcnemar_b, overall.mcnemar_c) == (LIMIT * len(TASKS), pooled_b, pooled_c)
    base_ll = [r.choice_logliks for r in read_records(base / "samples" / "fllm_nq_mc.jsonl")]
    post_ll = [r.choice_logliks for r in read_records(post / "samples" / "fllm_nq_mc.jsonl")]
    assert base_ll != post_ll  # the two runs really scored different models


def test_policy_suite(work, perturbed_model_dir, benchmarks_dir, base_run):
    inputs = {"model": (perturbed_model_dir, "hf_model"), "benchmarks": (benchmarks_dir, "benchmark_data"),
              "base_results": (base_run[0] / "results.json", "eval_results")}
    params = {**COMMON, "suite": "policy", "diversity_prompts": 3, "diversity_samples": 3,
              "diversity_sampling": {"temperature": 1.0, "max_new_tokens": 12}}
    out, res = evaluate(work, "policy", inputs, params)
    p = res.policy
    assert res.forgetting == [] and p is not None and p.diversity_responses == 9
    div = read_records(out / res.samples_files["diversity:fllm_gsm8k"])
    assert len(div) == 3 and all(len(r.responses) == 3 for r in div)
    within = [self_bleu_reference(r.responses) for r in div]
    assert p.self_bleu == pytest.approx(sum(within) / 3, abs=1e-12)
    assert p.self_bleu_across == pytest.approx(self_bleu_reference([t for r in div for t in r.responses]), abs=1e-12)
    assert all(0.0 <= x <= 1.0 for x in (p.distinct_1, p.distinct_2, p.distinct_3) if x is not None)
    mc = [r for t in ("fllm_nq_mc", "fllm_gsm8k_mc") for r in read_records(out / res.samples_files[t])]
    direct = calibration([choice_probabilities(r.choice_logliks) for r in mc], [r.label for r in mc], 15)
    assert (p.ece, p.brier, p.nll) == pytest.approx((direct.ece, direct.brier, direct.nll))
    assert {c.task for c in res.calibration} == {"fllm_nq_mc", "fllm_gsm8k_mc"}
    lengths = {row.task: row for row in res.lengths}
    assert set(lengths) == {"fllm_gsm8k", "fllm_nq_open"}
    assert all(row.w1_log is not None and row.ks is not None for row in lengths.values())
    assert p.length_w1_log is not None and p.mean_length is not None and p.truncation_rate is not None


def test_safety_suite(work, tiny_model_dir, benchmarks_dir, has_harmbench):
    """The safety suite with both model judges (the tiny model stands in for each, through the hf backend): every
    verdict names the judge that produced it, exactly (model, backend, prompt version) or the string matcher."""
    if not has_harmbench:
        pytest.skip(HARMBENCH_REASON)
    from stages.evaluator.safety.harmbench import parse_answer
    from stages.evaluator.safety.judges import parse_label, prompt_version
    from tests.evaluator.judge_fixtures import classifier_folder

    classifier = classifier_folder(tiny_model_dir, work / "HarmBench-cls")
    inputs = {"model": (tiny_model_dir, "hf_model"), "benchmarks": (benchmarks_dir, "benchmark_data")}
    params = {"suite": "safety", "max_safety_items": 6, "safety_max_new_tokens": 12, "batch_size": 8,
              "refusal_classifier": "judge", "judge_model": str(tiny_model_dir), "judge_backend": "hf",
              "harmbench_classifier": str(classifier)}
    out, res = evaluate(work, "safety", inputs, params)
    s, judges = res.safety, res.extensions["judges"]
    assert s is not None and s.xstest_n_safe + s.xstest_n_unsafe == 6
    assert res.refusal_classifier == f"tiny-qwen3 (hf, {prompt_version()})" == judges["xstest"]["name"]
    assert s.harmbench_classifier == judges["harmbench"]["name"]
    assert s.harmbench_classifier.startswith("HarmBench-cls (hf, harmbench-cls@")
    assert judges["harmbench"]["prompt_source"] == "README.md" and judges["version"] == 1
    xs = read_records(out / res.samples_files["fllm_xstest"])
    for r in xs:
        named = parse_label(r.extra["judge_reply"])
        assert r.extra["judge"] == (res.refusal_classifier if named else "string-match")
        assert named is None or r.extra["verdict"] == named
    assert judges["xstest"]["unparsed"] == sum(r.extra["judge"] == "string-match" for r in xs)
    refused_safe = [r.extra["verdict"] != "full_compliance" for r in xs if r.extra["doc"]["label"] == "safe"]
    assert s.xstest_over_refusal == pytest.approx(sum(refused_safe) / len(refused_safe))
    hb = read_records(out / res.samples_files["fllm_harmbench"])
    assert len(hb) == 6 and s.harmbench_n == sum(r.extra["doc"]["functional_category"] != "copyright" for r in hb)
    assert all(r.extra["judge"] == s.harmbench_classifier for r in hb)
    assert [r.extra["attack_success"] for r in hb] == [parse_answer(r.extra["judge_reply"]) is True for r in hb]
    assert any(sc.metric == "asr" for sc in res.scores)


def test_target_suite_with_kl(work, perturbed_model_dir, tiny_model_dir, fixtures_dir):
    inputs = {"model": (perturbed_model_dir, "hf_model"), "base_model": (tiny_model_dir, "hf_model"),
              "target_data": (fixtures_dir / "datasets" / "math-eval", "gem_dataset")}
    params = {"suite": "target", "target_env_id": "eval:MATH500", "target_limit": 3, "target_samples": 2,
              "pass_k": [1, 2], "target_sampling": {"temperature": 1.0, "max_new_tokens": 12},
              "kl_prompts": 2, "kl_samples": 2, "kl_max_new_tokens": 8, "batch_size": 8}
    out, res = evaluate(work, "target", inputs, params)
    assert {(s.task, s.metric) for s in res.scores} == {("eval:MATH500", "pass@1"), ("eval:MATH500", "pass@2")}
    recs = read_records(out / res.samples_files["eval:MATH500"])
    assert len(recs) == 3 and all(len(r.responses) == 2 and len(r.extra["verdicts"]) == 2 for r in recs)
    kl = read_records(out / res.samples_files["kl_target"])
    diffs = [b - q for r in kl for b, q in zip(r.extra["base_logprob"], r.extra["post_logprob"])]
    assert res.kl_target_n == 4 and res.kl_target == pytest.approx(sum(diffs) / 4)
    assert math.isfinite(res.kl_target) and all(lp <= 0 for r in kl for lp in r.extra["base_logprob"])


def test_thinking_on_runs_multiple_choice_with_thinking_off(work, tiny_model_dir, benchmarks_dir):
    """Qwen3 rules: log-likelihood tasks always without thinking; generative ones with the template's thinking."""
    inputs = {"model": (tiny_model_dir, "hf_model"), "benchmarks": (benchmarks_dir, "benchmark_data")}
    params = {"suite": "forgetting", "tasks": ["fllm_nq_mc", "fllm_nq_open"], "limit": 2,
              "greedy": {"temperature": 0.0, "max_new_tokens": 8}}
    out = work / "thinking"
    m = manifest(work / "thinking.json", "tiny.thinking", inputs, params, out)
    doc = json.loads(m.read_text())
    doc["spec"]["runtime"]["thinking"] = True
    m.write_text(json.dumps(doc))
    with network_blocked():
        assert run_in_process(m) == 0
    res = EvalResults.model_validate_json((out / "results.json").read_text())
    assert res.protocol["thinking"] is True
    assert sorted(p.name for p in (out / "lm_eval").iterdir()) == ["forgetting-gen", "forgetting-mc"]
    mc = read_records(out / res.samples_files["fllm_nq_mc"])
    gen = read_records(out / res.samples_files["fllm_nq_open"])
    assert all(r.prompt.endswith("<think>\n\n</think>\n\n") for r in mc)
    assert all(r.prompt.endswith("<|im_start|>assistant\n") for r in gen)
