"""The study's safety blocks, planned: attack runs on exactly the checkpoints the ``attacks:`` block selects, the
refusal direction wired from each SAFE baseline's own run into every post-trained checkpoint of its size, the judge
models set in every evaluator run and staged, both suites priced, and a block that selects nothing (or names an
unknown method) refused with exit 2 before anything is written. On the tiny model the evaluator checks every such
run (the direction's reader pending on its baseline) and, in the slow test, runs them: the baseline writes the
direction file and the reading run uses it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from stages.study.cli import main
from stages.study.definition import load_study
from stages.study.planner import plan_study


def suite_runs(plan, suite: str) -> dict:
    return {rid: r for rid, r in plan.runs.items() if r.stage == "evaluator"
            and r.manifest["spec"]["params"]["suite"] == suite}


def variant(tmp: Path, base: str = "phase2", **over) -> Path:
    path = tmp / "variant.yaml"
    path.write_text(yaml.safe_dump({"extends": base, "study": "variant", **over}))
    return path


def test_phase2_attacks_exactly_the_selected_checkpoints(fake_scratch, tmp_path):
    study = load_study("phase2")
    plan = plan_study(study, str(tmp_path / "runs"), "mila")
    attacks = suite_runs(plan, "attacks")
    trained = {rid for rid, r in plan.runs.items() if r.labels.get("method") in study.attacks.methods
               and r.stage != "evaluator" and r.labels["domain"] == "math" and r.labels["seed"] == 1}
    assert len(trained) == len(study.attacks.methods)
    assert set(attacks) == {f"{rid}.eval-attacks" for rid in trained} | {"qwen3-4b.safe.untrained.eval-attacks"}
    base = attacks["qwen3-4b.safe.untrained.eval-attacks"]
    assert Path(base.run_dir).parent == tmp_path / "runs" / "shared"  # untrained checkpoints: shared runs
    assert base.manifest["spec"]["inputs"]["model"]["uri"].endswith("/models/Qwen3-4B")
    for rid, run in attacks.items():
        spec = run.manifest["spec"]
        for key, value in study.attacks.params.items():
            assert spec["params"]["attacks"][key] == value
        assert "base_model" not in spec["inputs"] and spec["inputs"]["benchmarks"]["kind"] == "benchmark_data"
        assert spec["resources"]["time_minutes"] == study.attacks.resources["time_minutes"]
        assert spec["params"]["harmbench_classifier"].endswith("/models/HarmBench-Llama-2-13b-cls")
        if run is not base:
            up = rid.removesuffix(".eval-attacks")
            assert run.deps == (up,) and spec["inputs"]["model"]["from"] == \
                f"{plan.runs[up].record_path}#outputs.model"
            assert spec["params"]["labels"]["base_run_id"] == base.run_id
    assert set(attacks) <= set(plan.runs["report"].deps)  # the analyzer reads them


def direction_file(baseline) -> str:
    """The baseline run's direction file: a link to the evaluator output that is the file, else its path."""
    from stages.evaluator.refusal.store import FILE_NAME  # the file the baseline's run writes
    from stages.registry import load_stage

    names = [n for n, d in load_stage("evaluator").outputs.items() if d.path == FILE_NAME]
    return f"{baseline.record_path}#outputs.{names[0]}" if names else f"{baseline.output_dir}/{FILE_NAME}"


def test_the_refusal_direction_reads_the_safe_baseline_of_its_size(fake_scratch, tmp_path):
    root = tmp_path / "runs"
    phase2 = plan_study(load_study("phase2"), str(root), "mila")
    runs = suite_runs(phase2, "refusal_direction")
    baseline = runs.pop("qwen3-4b.safe.untrained.eval-refusal_direction")
    assert baseline.manifest["spec"]["params"]["refusal_direction"]["base_direction"] is None  # it extracts
    checkpoints = {rid for rid, r in phase2.runs.items() if r.stage in ("sft-trainer", "spin", "grpo-trainer",
                                                                          "pi-distill")}
    assert set(runs) == {f"{rid}.eval-refusal_direction" for rid in checkpoints}  # every post-trained checkpoint
    for run in runs.values():
        spec = run.manifest["spec"]
        assert spec["params"]["refusal_direction"]["base_direction"] == direction_file(baseline)
        assert baseline.run_id in run.deps and "base_model" not in spec["inputs"]  # the file is the base
    # phase 3: the BASE-start checkpoints of each size (and the untrained BASE model) against that size's SAFE
    # baseline, which is phase 2's own run at 4B (a shared run)
    phase3 = plan_study(load_study("phase3"), str(root), "mila")
    runs3 = suite_runs(phase3, "refusal_direction")
    assert runs3["qwen3-4b.safe.untrained.eval-refusal_direction"].run_dir == baseline.run_dir
    for size in ("1.7b", "8b", "14b"):
        safe = runs3[f"qwen3-{size}.safe.untrained.eval-refusal_direction"]
        for rid in (f"qwen3-{size}.base.untrained.eval-refusal_direction",
                    f"qwen3-{size}.base.math.on-rl.s1.eval-refusal_direction",
                    f"qwen3-{size}.safe.code.gt-sft.s1.eval-refusal_direction"):
            params = runs3[rid].manifest["spec"]["params"]
            assert params["refusal_direction"]["base_direction"] == direction_file(safe)
            assert params["labels"]["base_run_id"] == safe.run_id and safe.run_id in runs3[rid].deps
    # a study without SAFE students plans none
    assert not suite_runs(plan_study(load_study("phase1"), str(root), "mila"), "refusal_direction")


def test_judges_are_set_in_every_evaluation_and_staged_with_their_licence(fake_scratch, tmp_path):
    from stages.study.staging.items import needed_items

    study = load_study("phase2")
    plan = plan_study(study, str(tmp_path / "runs"), "mila")
    evals = [r for r in plan.runs.values() if r.stage == "evaluator"]
    for run in evals:
        params = run.manifest["spec"]["params"]
        for param, key in study.evaluation.judges.items():
            assert Path(params[param]).name == study.models.checkpoints[key].repo_id.rsplit("/", 1)[-1]
    items = {i.name: i for i in needed_items(plan, study) if i.kind == "model"}
    for key in study.evaluation.judges.values():
        ck = study.models.checkpoints[key]
        assert items[key].source == ck.repo_id and items[key].licence == ck.licence == "MIT"
        assert len(items[key].used_by) == len(evals)
    bench = {i.name for i in needed_items(plan, study) if i.kind == "benchmark"}
    assert {"harmbench_test", "harmbench_val", "dolly"} <= bench  # attacks' behaviours; the direction's pools


@pytest.mark.parametrize(("over", "needle"), [
    ({"attacks": {"include_safe": False, "methods": []}}, "attacks: the attacks block selects no checkpoint"),
    ({"attacks": {"methods": ["ON-RL", "SELFF"]}}, "attacks.methods[1]: unknown method 'SELFF'"),
    ({"extends": "phase3", "attacks": {"methods": ["PI"]}}, "attacks.methods[0]: a method this study does not train"),
    ({"attacks": {"methods": ["PI"], "params": {"methods": ["gcg", "pair"]}}}, "attacks.params: evaluator `attacks`"),
    ({"attacks": {"methods": ["PI"], "seeds": [7]}}, "attacks.seeds[0]: no selected domain trains seed 7"),
    ({"attacks": {"methods": [], "include_safe": False, "include_base": True}}, "attacks.include_base: no selected"),
    ({"attacks": {"runs": ["qwen3-4b.safe.math.pi.s9"]}}, "attacks.runs[0]: run 'qwen3-4b.safe.math.pi.s9' is not"),
    ({"evaluation": {"suites": ["all", "attacks"]}}, "evaluation.suites[1]: suite 'attacks' is planned by"),
    ({"refusal_direction": {"params": {"base_direction": "/x"}}}, "refusal_direction.params.base_direction: set by"),
])
def test_a_bad_safety_block_exits_2_naming_its_key(fake_scratch, tmp_path, over, needle):
    base = over.pop("extends", "phase2")
    root = tmp_path / "runs"
    for command in ("plan", "check"):
        res = CliRunner().invoke(main, [command, str(variant(tmp_path, base, **over)), "--root", str(root)])
        assert res.exit_code == 2, res.output
        assert needle in res.stderr
    assert not root.exists()


def test_attack_and_direction_runs_are_priced_from_their_params(fake_scratch, tmp_path):
    from stages.study.costing.cards import card
    from stages.study.costing.cost import estimate_run
    from stages.study.costing.report import assess, render_costs
    from stages.study.profiles import load_profile

    def cost(study_path, run_id: str):
        plan = plan_study(load_study(str(study_path)), str(tmp_path / "runs"), "local", check_paths=False)
        return estimate_run(plan, plan.runs[run_id], card("H100-80GB"))

    attack = "qwen3-4b.safe.math.pi.s1.eval-attacks"
    gcg = {"methods": ["gcg"], "n_behaviours": 10}
    one = cost(variant(tmp_path, attacks={"methods": ["PI"], "params": gcg}), attack)
    assert one.hours > 0 and one.basis.startswith("measured rates x estimated tokens: 10 behaviours x (gcg")
    more = cost(variant(tmp_path, attacks={"methods": ["PI"], "params": {**gcg, "n_behaviours": 20}}), attack)
    wider = cost(variant(tmp_path, attacks={"methods": ["PI"], "params": {**gcg, "gcg": {"search_width": 1024}}}),
                 attack)
    assert 1.8 < more.hours / one.hours < 2.0  # per behaviour, beside two model loads
    assert 1.8 < wider.hours / one.hours < 2.0  # candidate forwards dominate a GCG step
    both = cost(variant(tmp_path, attacks={"methods": ["PI"], "params": {**gcg, "methods": ["gcg", "autodan"]}}),
                attack)
    assert both.hours > one.hours
    plan = plan_study(load_study("phase2"), str(tmp_path / "runs"), "local", check_paths=False)
    extract = estimate_run(plan, plan.runs["qwen3-4b.safe.untrained.eval-refusal_direction"], card("H100-80GB"))
    measure = estimate_run(plan, plan.runs["qwen3-4b.safe.math.pi.s1.eval-refusal_direction"], card("H100-80GB"))
    assert 0 < measure.hours and "extracts" in extract.basis and "against" in measure.basis
    judged = "qwen3-4b.safe.math.pi.s1.eval-all"  # a judge model is one more vLLM engine reading every XSTest item
    unjudged = cost(variant(tmp_path, evaluation={"params": {"refusal_classifier": "string-match"}}), judged)
    assert estimate_run(plan, plan.runs[judged], card("H100-80GB")).hours > unjudged.hours
    text = render_costs(assess(plan, load_profile("local")))
    assert "evaluator:attacks" in text and "evaluator:refusal_direction" in text and "estimates" in text
    res = CliRunner().invoke(main, ["plan", "phase2", "--root", str(tmp_path / "written"), "--cluster", "mila"])
    assert res.exit_code == 0, res.output
    rows = {line.split()[0]: line.split()[1:] for line in res.output.splitlines() if line.startswith("  evaluator")}
    assert rows["evaluator:attacks"][0] == "7" and rows["evaluator:refusal_direction"][0] == "31"  # lines of their own


def test_the_rehearsal_shrinks_the_safety_budgets_and_judges_by_string_matching():
    from stages.study.rehearsal import ATTACK_SCALE, DIRECTION_SCALE, StandIns, rehearsal_of

    reh = rehearsal_of("phase2", StandIns())
    assert reh.study.evaluation.judges == {} and reh.study.evaluation.params["refusal_classifier"] == "string-match"
    assert reh.study.attacks.params["n_behaviours"] == ATTACK_SCALE["n_behaviours"]
    assert reh.study.attacks.params["methods"] == load_study("phase2").attacks.params["methods"]  # kept as written
    assert reh.study.refusal_direction.params["n_train"] == DIRECTION_SCALE["n_train"]
    assert "attacks.params.gcg.num_steps" in reh.replaced and "evaluation.judges" in reh.replaced


TINY_ATTACKS = {"n_behaviours": 2, "max_new_tokens": 8,
                "gcg": {"num_steps": 2, "search_width": 8, "topk": 8},
                "autodan": {"num_steps": 2, "population": 4, "eval_steps": 1, "check_max_new_tokens": 4,
                            "forward_batch_size": 4}}
TINY_DIRECTION = {"n_train": 8, "n_val": 4, "n_eval": 4, "max_new_tokens": 4, "induce_threshold": -1000.0}


def tiny_safety_study(tmp: Path, analysis: bool = False) -> Path:
    """The tiny Qwen3 as a BASE and a SAFE student (no training): both untrained checkpoints attacked, the SAFE
    one's refusal direction read by the BASE one's run; the classifier is the tiny model beside the HarmBench card."""
    from tests.evaluator.judge_fixtures import classifier_folder
    from tests.study.conftest import REPO, staged_benchmarks

    tiny = str(REPO / ".fixtures" / "tiny-qwen3")
    study = {
        "study": "tiny-safety",
        "models": {"checkpoints": {
            "tiny-base": {"size": "tiny", "path": tiny}, "tiny-safe": {"size": "tiny", "path": tiny},
            "cls": {"size": "tiny", "path": str(classifier_folder(Path(tiny), tmp / "cls"))}}},
        "students": [{"model": "tiny-base", "start": "BASE", "id": "tiny.base"},
                     {"model": "tiny-safe", "start": "SAFE", "id": "tiny.safe"}],
        "data": {"benchmarks": str(staged_benchmarks(tmp / "benchmarks"))},
        "engines": {"evaluator": "hf"}, "tracking": {"wandb": False},
        "evaluation": {"base": False, "judges": {"harmbench_classifier": "cls"}},
        "attacks": {"include_base": True, "include_safe": True, "params": TINY_ATTACKS},
        "refusal_direction": {"params": TINY_DIRECTION},
        "analysis": {"enabled": analysis},
        "resources": {"default": {"gpus_per_node": 0, "cpus_per_task": 1, "mem_gb": 4, "time_minutes": 30}},
    }
    path = tmp / "tiny-safety.yaml"
    path.write_text(yaml.safe_dump(study))
    return path


TINY_RUNS = {"tiny.base.untrained.eval-attacks", "tiny.safe.untrained.eval-attacks",
             "tiny.safe.untrained.eval-refusal_direction", "tiny.base.untrained.eval-refusal_direction"}


def test_the_evaluator_checks_the_safety_runs_and_the_direction_waits_for_its_baseline(tmp_path):
    res = CliRunner().invoke(main, ["check", str(tiny_safety_study(tmp_path)), "--root", str(tmp_path / "runs"),
                                    "--verbose"])
    assert res.exit_code == 0, res.output
    assert "all 4 planned manifests pass" in res.output
    rows = {line.split()[2]: line for line in res.output.splitlines() if line.startswith("  ok ")}
    assert set(rows) == TINY_RUNS
    assert "refusal_direction.base_direction" in rows["tiny.base.untrained.eval-refusal_direction"]  # pending
    assert "waits for" not in rows["tiny.safe.untrained.eval-refusal_direction"]


@pytest.mark.slow  # four evaluator runs on the tiny model (CPU) and the analyzer: about 1.5 minutes on 2 busy cores
def test_the_tiny_safety_study_runs_and_the_base_reads_the_safe_direction(tmp_path):
    import hashlib
    import json

    from stages.evaluator.refusal.store import FILE_NAME

    root = tmp_path / "runs"
    res = CliRunner().invoke(main, ["run", str(tiny_safety_study(tmp_path, analysis=True)), "--executor", "local",
                                    "--root", str(root)])
    assert res.exit_code == 0, res.output
    shared = root / "shared"
    out = {json.loads(m.read_text())["run_id"]: m.parent for m in shared.glob("*/out/manifest.json")}
    assert set(out) == TINY_RUNS
    written = out["tiny.safe.untrained.eval-refusal_direction"] / FILE_NAME
    base = json.loads((out["tiny.base.untrained.eval-refusal_direction"] / "results.json").read_text())
    block = base["extensions"]["refusal_direction"]
    assert block["source"] == "file"
    assert block["base_direction_sha256"].endswith(hashlib.sha256(written.read_bytes()).hexdigest())
    for rid in ("tiny.base.untrained.eval-attacks", "tiny.safe.untrained.eval-attacks"):
        attacks = json.loads((out[rid] / "results.json").read_text())["extensions"]["attacks"]
        assert set(attacks["methods"]) == {"gcg", "autodan"} and attacks["methods"]["gcg"]["n"] == 2
    report = json.loads((root / "tiny-safety" / "report" / "out" / "manifest.json").read_text())
    assert report["status"]["state"] == "succeeded" and set(report["spec"]["inputs"]) == TINY_RUNS
