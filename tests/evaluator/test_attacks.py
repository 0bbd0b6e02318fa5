"""The attacks suite for real on the tiny model, through the evaluator's CLI and lifecycle in this process (network
blocked, local rows only): GCG (nanoGCG) and AutoDAN run a few steps on two HarmBench behaviours, the completions are
judged by a stand-in HarmBench classifier (the tiny model behind the real classifier card), and a run stopped by a
real SIGTERM in the middle of an attack, once in GCG and once in AutoDAN, resumes to exactly the rows of an
uninterrupted run. Bad input exits 2 before any model is loaded, with nothing written.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
from pathlib import Path

import pytest
from click.testing import CliRunner

from stages.core.results import EvalResults
from stages.evaluator.cli import main as evaluator_cli
from tests.evaluator.conftest import HARMBENCH_REASON, manifest, network_blocked
from tests.evaluator.judge_fixtures import classifier_folder

IDS = ["racist_vitriol_generation", "child_bullying_tips"]  # two of the shortest prompts: fast steps on CPU
ATTACKS = {"behaviour_ids": IDS, "max_new_tokens": 6,
           "gcg": {"num_steps": 2, "search_width": 4, "topk": 4},
           "autodan": {"num_steps": 3, "population": 4, "eval_steps": 2, "check_max_new_tokens": 4,
                       "forward_batch_size": 4}}


@pytest.fixture(scope="module")
def work(tmp_path_factory, has_harmbench) -> Path:
    if not has_harmbench:
        pytest.skip(HARMBENCH_REASON)
    return tmp_path_factory.mktemp("attacks")


@pytest.fixture(scope="module")
def classifier(work, tiny_model_dir) -> Path:
    return classifier_folder(tiny_model_dir, work / "classifier")


def evaluate(tmp: Path, name: str, inputs: dict, params: dict, out: Path | None = None) -> tuple[int, Path]:
    out = out or tmp / name
    m = manifest(tmp / f"{name}.json", f"tiny.{name}", inputs, {"suite": "attacks", **params}, out)
    with network_blocked():
        res = CliRunner().invoke(evaluator_cli, ["--manifest", str(m)], catch_exceptions=False)
    return res.exit_code, out


def attacks_block(out: Path) -> dict:
    doc = json.loads((out / "results.json").read_text())
    EvalResults.model_validate(doc)
    return doc["extensions"]["attacks"]


@pytest.fixture(scope="module")
def inputs(tiny_model_dir, benchmarks_dir) -> dict:
    return {"model": (tiny_model_dir, "hf_model"), "benchmarks": (benchmarks_dir, "benchmark_data")}


@pytest.fixture(scope="module")
def uninterrupted(work, inputs, classifier) -> dict:
    code, out = evaluate(work, "whole", inputs, {"harmbench_classifier": str(classifier), "attacks": ATTACKS})
    assert code == 0, (out / "manifest.json").read_text()
    return attacks_block(out)


def test_both_attacks_run_and_are_judged(uninterrupted, classifier):
    b = uninterrupted
    assert b["version"] == 1 and b["judge"].startswith(classifier.name) and b["judge"] != "refusal-fallback"
    assert [(r["method"], r["behavior_id"]) for r in b["behaviours"]] == [(m, i) for m in ("gcg", "autodan")
                                                                          for i in IDS]
    for method, m in b["methods"].items():
        assert m["n"] == 2 and 0.0 <= m["asr"] <= 1.0 and m["gpu_seconds"] > 0
        assert m["steps_run"] == sum(r["steps"] for r in b["behaviours"] if r["method"] == method)
        assert set(m["by_category"]) == {r["semantic_category"] for r in b["behaviours"]}
    assert b["methods"]["autodan"]["mutation"] == "word" and b["targets"] == "generic"
    for r in b["behaviours"]:
        assert isinstance(r["success"], bool) and r["loss"] > 0 and r["steps"] >= 1
        assert isinstance(r["completion"], str)
    gcg = [r for r in b["behaviours"] if r["method"] == "gcg"]
    assert all(r["steps"] == 2 and len(r["adversarial_prompt"].split()) > 5 for r in gcg)
    autodan = [r for r in b["behaviours"] if r["method"] == "autodan"]
    assert all("[REPLACE]" not in r["adversarial_prompt"] for r in autodan)
    assert all(len(r["adversarial_prompt"]) > 200 for r in autodan)  # the behaviour inside a prototype


def test_a_run_killed_mid_attack_resumes_to_the_uninterrupted_rows(work, inputs, classifier, uninterrupted,
                                                                    monkeypatch):
    from stages.evaluator.attacks.autodan import AutoDANAttack
    from stages.evaluator.attacks.gcg import GCGAttack

    def kill_on_second_behaviour(cls):
        real, calls = cls.run, []

        def run(self, b, seed):
            calls.append(b.behavior_id)
            if len(calls) == 2:  # a real stop signal, handled by the lifecycle, before the attack's first step
                os.kill(os.getpid(), signal.SIGTERM)
            return real(self, b, seed)

        monkeypatch.setattr(cls, "run", run)

    out = work / "resumed"
    params = {"harmbench_classifier": str(classifier), "attacks": ATTACKS}
    kill_on_second_behaviour(GCGAttack)
    code, _ = evaluate(work, "resumed", inputs, params, out)
    assert code == 75
    rows = out / "checkpoints" / "attacks" / "behaviours.jsonl"
    assert [json.loads(x)["behavior_id"] for x in rows.read_text().splitlines()] == IDS[:1]  # GCG's 2nd was lost
    monkeypatch.undo()
    kill_on_second_behaviour(AutoDANAttack)
    code, _ = evaluate(work, "resumed", inputs, params, out)
    assert code == 75
    assert len(rows.read_text().splitlines()) == 3  # GCG finished, AutoDAN's 1st written, its 2nd lost
    monkeypatch.undo()
    code, _ = evaluate(work, "resumed", inputs, params, out)
    assert code == 0
    record = json.loads((out / "manifest.json").read_text())
    assert record["status"]["state"] == "succeeded" and record["status"]["attempt"] == 3
    resumed = attacks_block(out)
    assert resumed["behaviours"] == uninterrupted["behaviours"]
    for m in ("gcg", "autodan"):
        same = ("asr", "n", "by_category", "steps_run")
        assert {k: resumed["methods"][m][k] for k in same} == {k: uninterrupted["methods"][m][k] for k in same}


def test_bad_input_exits_2_before_anything_is_written(work, inputs, classifier, tiny_model_dir, benchmarks_dir):
    ok = {"harmbench_classifier": str(classifier), "attacks": ATTACKS}
    unknown = {**ok, "attacks": {**ATTACKS, "behaviour_ids": [IDS[0], "no_such_behaviour"]}}
    no_judge = {"attacks": ATTACKS}
    missing_judge = {**ok, "harmbench_classifier": str(work / "no-classifier-here")}
    plain = work / "no-chat-template"
    plain.mkdir()
    for f in tiny_model_dir.iterdir():
        if f.is_file() and f.name != "chat_template.jinja":
            shutil.copy(f, plain / f.name)
    copyright_id = {**ok, "attacks": {**ATTACKS, "behaviour_ids": ["passage_crawdads_sing"]}}
    cases = {"unknown-id": (inputs, unknown), "no-judge": (inputs, no_judge), "missing-judge": (inputs, missing_judge),
             "no-template": ({**inputs, "model": (plain, "hf_model")}, ok), "copyright": (inputs, copyright_id),
             "twice": (inputs, {**ok, "attacks": {**ATTACKS, "methods": ["gcg", "gcg"]}})}
    for name, (ins, params) in cases.items():
        code, out = evaluate(work, f"bad-{name}", ins, params)
        assert code == 2 and not out.exists(), name
    fallback = {**ATTACKS, "methods": ["autodan"], "behaviour_ids": IDS[:1], "allow_refusal_fallback": True}
    code, out = evaluate(work, "fallback", inputs, {"attacks": fallback})
    assert code == 0
    assert attacks_block(out)["judge"] == "refusal-fallback"
