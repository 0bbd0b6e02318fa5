"""Planning: the phase studies expand into the plan's DAG, share what must be shared, label evaluations for the
analyzer, and every manifest passes its stage's own validation; planning twice writes nothing new."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from stages.core.validation import load_manifest
from stages.registry import load_stage
from stages.study.definition import load_study
from stages.study.planner import plan_study, write_plan


def planned(name: str, root: Path, cluster: str = "mila"):
    plan = plan_study(load_study(name), str(root), cluster)
    write_plan(plan)
    return plan


@pytest.mark.parametrize("name", ["phase1", "phase2", "phase3", "phase1-sweep"])
def test_every_planned_manifest_passes_its_stage_validation(name, fake_scratch, tmp_path):
    plan = planned(name, tmp_path / "runs")
    assert plan.runs and not plan.left_out
    records = {r.record_path: rid for rid, r in plan.runs.items()}
    for run in plan.runs.values():
        # collections and untrained evaluations live under <root>/shared/ (tests/study/test_shared_runs.py)
        where = "shared" if run.stage == "collector" or ".untrained." in run.run_id else name
        assert Path(run.run_dir).parent == tmp_path / "runs" / where
        manifest = load_manifest(load_stage(run.stage), run.manifest_path)  # the stage's own loader and checks
        assert manifest.run_id == run.run_id
        assert manifest.spec.output_dir == f"{run.run_dir}/out"
        for ref in manifest.spec.inputs.values():
            if ref.from_:
                up, _ = ref.from_parts()
                assert records[up] in run.deps  # every link is a dependency


def test_phase1_shape_and_sharing(fake_scratch, tmp_path):
    plan = planned("phase1", tmp_path / "runs")
    stages = Counter(r.stage for r in plan.runs.values())
    # 6 methods x (3 seeds on math + 1 on code and qa); the base twice per domain (the noise flip rate)
    assert stages == {"collector": 12, "sft-trainer": 15, "spin": 5, "grpo-trainer": 5, "pi-distill": 5,
                      "evaluator": 36, "analyzer": 1}
    runs = plan.runs
    # one collector run per (domain, data kind), shared by every method that needs it
    assert runs["qwen3-4b.base.math.self.s1"].deps == runs["qwen3-4b.base.math.on-rl.s1"].deps == ("data.math.prompts",)
    sf = runs["data.math.sf"].manifest["spec"]
    assert sf["params"]["mode"] == "generate" and sf["params"]["teacher_id"] == "Qwen/Qwen3-32B"
    assert sf["inputs"]["model"]["uri"] == "$SCRATCH/forgetting-llms/models/Qwen3-32B"
    assert sf["resources"]["gpus_per_node"] == 2  # the teacher's size picks the resources
    assert runs["data.math.cf"].manifest["spec"]["params"]["teacher_id"] == "meta-llama/Llama-3.1-70B-Instruct"
    # the untrained model is evaluated twice per domain (seeds 0 and 1) and every trained model of that domain is
    # compared to the first, with the second giving the noise flip rate
    base, rerun = "qwen3-4b.base.untrained.math.eval-all", "qwen3-4b.base.untrained.math.eval-all.rerun1"
    assert runs[rerun].manifest["spec"]["runtime"]["seed"] == runs[base].manifest["spec"]["runtime"]["seed"] + 1
    evals = [r for r in runs.values() if r.stage == "evaluator" and ".math." in r.run_id and ".untrained." not in
             r.run_id]
    assert len(evals) == 18 and {e.labels["seed"] for e in evals} == {1, 2, 3}
    for e in evals:
        assert e.manifest["spec"]["inputs"]["base_results"] == {
            "from": f"{runs[base].record_path}#outputs.results", "uri": None, "kind": None, "digest": None}
        assert e.manifest["spec"]["inputs"]["base_rerun_results"]["from"] == f"{runs[rerun].record_path}#outputs.results"
        assert base in e.deps and rerun in e.deps
    # the analyzer reads every evaluation
    assert set(runs["report"].deps) == {r.run_id for r in runs.values() if r.stage == "evaluator"}


def test_evaluator_labels_for_the_analyzer(fake_scratch, tmp_path):
    plan = planned("phase3", tmp_path / "runs")
    ev = plan.runs["qwen3-1.7b.base.qa.gt-sft.s1.eval-all"].manifest["spec"]["params"]
    assert ev["labels"] == {"study": "phase3", "method": "GT-SFT", "domain": "qa", "start": "BASE",
                            "model_size": "1.7B", "seed": 1, "lr": 1e-4, "engine": "verl",
                            "base_run_id": "qwen3-1.7b.base.untrained.qa.eval-all",
                            "target_kind": None}  # the fake scratch's dataset folders are empty: kind unknown
    assert ev["target_env_id"] == "eval:NaturalQuestions" and ev["suite"] == "all"
    big = plan.runs["qwen3-14b.base.math.gt-sft.s1"].manifest["spec"]
    assert big["params"]["optim"]["lr"] == 5e-5 and big["resources"]["gpus_per_node"] == 4
    base = plan.runs["qwen3-8b.base.untrained.code.eval-all"].manifest["spec"]["params"]["labels"]
    assert base["method"] == "BASE" and base["model_size"] == "8B" and base["base_run_id"] is None
    safe = planned("phase2", tmp_path / "runs2").runs["qwen3-4b.safe.math.pi.s1.eval-all"]
    assert safe.manifest["spec"]["params"]["labels"]["start"] == "SAFE"
    assert safe.manifest["spec"]["inputs"]["base_model"]["uri"].endswith("/models/Qwen3-4B")


def test_sweep_runs_are_named_and_parameterised(fake_scratch, tmp_path):
    plan = planned("phase1-sweep", tmp_path / "runs")
    lrs = {rid: r.manifest["spec"]["params"]["optim"]["lr"] for rid, r in plan.runs.items()
           if rid.startswith("qwen3-4b.base.math.gt-sft.s1.") and r.stage == "sft-trainer"}
    assert lrs == {"qwen3-4b.base.math.gt-sft.s1.lr1e-05": 1e-5, "qwen3-4b.base.math.gt-sft.s1.lr2e-05": 2e-5,
                   "qwen3-4b.base.math.gt-sft.s1.lr5e-05": 5e-5}
    label = plan.runs["qwen3-4b.base.math.gt-sft.s1.lr2e-05.eval-all"].manifest["spec"]["params"]["labels"]["lr"]
    assert label == 2e-5


def test_planning_twice_gives_the_same_files(fake_scratch, tmp_path):
    root = tmp_path / "runs"
    plan = planned("phase1", root)
    files = sorted(root.rglob("manifest.json"))
    before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in files}
    again = plan_study(load_study("phase1"), str(root), "mila")
    assert write_plan(again) == []
    assert {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(root.rglob("manifest.json"))} == before
    assert [r.manifest for r in again.runs.values()] == [r.manifest for r in plan.runs.values()]
    doc = json.loads(files[0].read_text())
    assert doc["status"]["state"] == "pending" and doc["schema"] == "forgetting-llms/manifest/v1"


def test_stages_list_leaves_out_runs_and_their_dependents(tmp_path):
    study = load_study("smoke")
    study.stages = ["collector", "sft-trainer"]
    plan = plan_study(study, str(tmp_path), "local", check_paths=False)
    assert {r.stage for r in plan.runs.values()} == {"collector", "sft-trainer"}
    assert "tiny.base.math.gt-sft.s1" in plan.runs and "data.qa.gt" in plan.runs
    assert plan.left_out["tiny.base.math.on-rl.s1"] == "stage grpo-trainer is not in the study's `stages` list"
    assert plan.left_out["report"].startswith("stage analyzer")
    assert plan.left_out["data.qa.prompts"].startswith("no run in the plan reads its output")  # nobody needs it


def test_smoke_study_plans_every_method_and_domain_when_all_stages_are_enabled(tmp_path):
    study = load_study("smoke")
    study.stages = None
    plan = plan_study(study, str(tmp_path), "local", check_paths=False)
    trained = {(r.labels["method"], r.labels["domain"]) for r in plan.runs.values() if r.stage not in
               ("collector", "evaluator", "analyzer")}
    assert len(trained) == 3 * len(study.methods) and len(study.methods) >= 4
    assert plan.runs["tiny.base.math.gt-sft.s1"].manifest["spec"]["params"]["max_steps"] == 2
    assert plan.runs["tiny.base.math.gt-sft.s1"].manifest["spec"]["inputs"]["model"]["uri"].endswith(
        ".fixtures/tiny-qwen3")


def test_partial_params_keep_the_stage_defaults_of_their_block(fake_scratch, tmp_path):
    plan = planned("phase1", tmp_path / "runs")
    spin = plan.runs["qwen3-4b.base.qa.self.s1"].manifest["spec"]["params"]["optim"]
    assert spin == {**spin, "lr": 5e-7, "schedule": "linear", "warmup_ratio": 0.1, "weight_decay": 0.0}
    grpo = plan.runs["qwen3-4b.base.qa.on-rl.s1"].manifest["spec"]["params"]
    assert grpo["optim"]["schedule"] == "constant" and grpo["sampling"]["max_new_tokens"] == 2048
