"""``study check`` on the shipped studies: every planned manifest passes its own stage's validate and preflight
against a scratch staged from the fixtures, and each single fault (a missing model, a missing benchmark file, SELF's
vLLM replica wider than its GPUs, a typo in the study) fails with its own message naming the cause. Nothing is
written.

The stages check their manifests in their own processes (``<stage> check``), with real files: the tiny Qwen3 stands
in for every model folder, the fixture datasets and benchmark rows for the staged ones, and verl composes the
sft-trainer's config for real.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from stages.study.cli import main
from tests.study.conftest import REPO, SHIPPED


def check(study: str | Path, root: Path, *extra: str):
    return CliRunner().invoke(main, ["check", str(study), "--root", str(root), *extra])


def variant(tmp: Path, **over) -> Path:
    """phase1 with some keys changed (`extends` merges them over the shipped file)."""
    path = tmp / "variant.yaml"
    path.write_text(yaml.safe_dump({"extends": "phase1", "study": "variant", **over}))
    return path


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_study_checks(name, staged_scratch, tmp_path):
    root = tmp_path / "runs"
    res = check(name, root)
    assert res.exit_code == 0, res.output
    assert "planned manifests pass their stage's validate and preflight" in res.output
    assert not root.exists(), "study check writes nothing"


def test_phase1_checks_every_stage_and_names_what_waits(staged_scratch, tmp_path):
    res = check("phase1", tmp_path / "runs", "--verbose")
    assert res.exit_code == 0, res.output
    for stage in ("collector", "sft-trainer", "grpo-trainer", "spin", "pi-distill", "evaluator", "analyzer"):
        assert f" {stage} manifest(s) ..." in res.output, stage
    # a trainer's data comes from a collector run that has not happened: its checks wait for it, by name
    assert "qwen3-4b.base.math.gt-sft.s1" in res.output and "data <- data.math.gt" in res.output
    # three seeds on math, one elsewhere; the base twice per domain (noise flip rate)
    for seed in (1, 2, 3):
        assert f"qwen3-4b.base.math.self.s{seed} " in res.output
    assert "qwen3-4b.base.code.self.s2" not in res.output
    assert "qwen3-4b.base.untrained.qa.eval-all.rerun1" in res.output


def test_a_missing_model_is_named(staged_scratch, tmp_path):
    (staged_scratch / "models" / "Qwen3-32B").unlink()
    res = check("phase1", tmp_path / "runs")
    assert res.exit_code == 2, res.output
    assert "FAIL collector     data.math.sf" in res.output
    assert "cannot read input 'model'" in res.output and "models/Qwen3-32B does not exist" in res.output
    assert "3 x $.spec.inputs.model" in res.output  # one cause, three runs (one sf collection per domain)
    assert not (tmp_path / "runs").exists()


def test_a_missing_benchmark_file_is_named(staged_scratch, tmp_path):
    (staged_scratch / "benchmarks" / "xstest_prompts.csv").unlink()
    res = check("phase1", tmp_path / "runs")
    assert res.exit_code == 2, res.output
    assert "FAIL evaluator" in res.output and "task fllm_xstest" in res.output
    assert "xstest" in res.output.split("causes:")[1]


def test_self_on_two_gpus_with_a_vllm_layout_too_big_for_them_is_refused(staged_scratch, tmp_path):
    # spin runs on several GPUs (torchrun); what it refuses is a vLLM replica wider than the node's GPUs
    study = variant(tmp_path, resources={"stages": {"spin": {"4B": {"gpus_per_node": 2}}}},
                    hyperparameters={"SELF": {"vllm": {"tensor_parallel_size": 4}}})
    res = check(study, tmp_path / "runs")
    assert res.exit_code == 2, res.output
    assert "FAIL spin          qwen3-4b.base.math.self.s1" in res.output
    assert "vllm.tensor_parallel_size 4 does not divide the batch node's 2 GPU(s)" in res.output
    assert "not implemented" not in res.output
    assert "FAIL pi-distill" not in res.output and "FAIL sft-trainer" not in res.output


def test_a_study_key_typo_is_named(staged_scratch, tmp_path):
    res = check(variant(tmp_path, hyperparamters={"SELF": {"beta": 0.2}}), tmp_path / "runs")
    assert res.exit_code == 2
    assert "hyperparamters: unknown key" in res.stderr
    res = check(variant(tmp_path, hyperparameters={"SELF": {"bta": 0.2}}), tmp_path / "runs")
    assert res.exit_code == 2
    assert "qwen3-4b.base.math.self.s1" in res.stderr and "$.spec.params.bta: unknown key" in res.stderr


@pytest.mark.parametrize(("over", "needle"), [
    ({"methods": ["GT-SFT", "SELFF"]}, "methods[1]: unknown method 'SELFF'"),
    ({"students": [{"model": "Qwen3-4B-Bse", "start": "BASE"}]}, "students[0].model: unknown model 'Qwen3-4B-Bse'"),
    ({"seeds_by_domain": {"maths": [1, 2]}}, "seeds_by_domain.maths: unknown domain 'maths'"),
    ({"evaluation": {"base_replicate": 2}}, "evaluation.base_replicate: unknown key"),
])
def test_bad_study_input_exits_2_naming_the_key(staged_scratch, tmp_path, over, needle):
    res = check(variant(tmp_path, **over), tmp_path / "runs")
    assert res.exit_code == 2, res.output
    assert needle in res.stderr
    assert not (tmp_path / "runs").exists()


def test_unknown_cluster_exits_2(staged_scratch, tmp_path):
    res = check("phase1", tmp_path / "runs", "--cluster", "nowhere")
    assert res.exit_code == 2
    assert "nowhere" in res.stderr


def test_submit_runs_the_check_first_and_submits_nothing_when_it_fails(staged_scratch, tmp_path):
    study = variant(tmp_path, engines={"pi-distill": "native"},  # the native engine runs in one process
                    resources={"stages": {"pi-distill": {"4B": {"gpus_per_node": 4}}}})
    res = CliRunner().invoke(main, ["submit", str(study), "--cluster", "local", "--dry-run", "--root",
                                    str(tmp_path / "runs")])
    assert res.exit_code == 2, res.output
    assert "native engine on 1 node(s) x 4 GPUs" in res.output and "nothing submitted" in res.stderr
    assert "#SBATCH" not in res.output


def fourteen_b_folder(tmp: Path) -> Path:
    """A model folder with Qwen3-14B's config.json and the tiny model's tokenizer (no weights: nothing loads them at
    check time); the memory model reads its shape from the config."""
    from stages.study.costing.shapes import SHAPES

    tiny = REPO / ".fixtures" / "tiny-qwen3"
    folder = tmp / "Qwen3-14B-Base"
    folder.mkdir()
    for f in tiny.iterdir():
        if f.name not in ("config.json", "model.safetensors"):
            (folder / f.name).symlink_to(f)
    s = SHAPES["14B"]
    cfg = json.loads((tiny / "config.json").read_text())
    cfg.update(hidden_size=s.hidden, intermediate_size=s.intermediate, num_hidden_layers=s.layers,
               num_attention_heads=s.heads, num_key_value_heads=s.kv_heads, head_dim=s.head_dim,
               tie_word_embeddings=s.tied)
    (folder / "config.json").write_text(json.dumps(cfg))
    return folder


def test_14b_on_one_80gb_card_is_refused_naming_what_fits_and_unequal_budgets_warn(staged_scratch, tmp_path):
    """One check: SF-SFT of a 14B student on one GPU of the local profile's H100 fails with the resources that fit;
    SELF left at SPIN's 256 new tokens beside a 2048-token teacher collection is a warning, not a failure."""
    tiny = str(REPO / ".fixtures" / "tiny-qwen3")
    study = {
        "study": "big", "stages": ["collector", "sft-trainer", "spin"],
        "models": {"checkpoints": {"Qwen3-14B-Base": {"size": "14B", "path": str(fourteen_b_folder(tmp_path))},
                                   "teacher": {"size": "tiny", "path": tiny}}},
        "students": [{"model": "Qwen3-14B-Base", "start": "BASE", "id": "qwen3-14b.base"}],
        "teachers": {"same-family": "teacher"}, "domains": ["math"], "methods": ["SF-SFT", "SELF"],
        "data": {"root": str(REPO / ".fixtures" / "datasets")}, "engines": {"sft-trainer": "verl"},
        "collection": {"generate": {"sampling": {"max_new_tokens": 2048}}},
        "hyperparameters": {"SELF": {"sampling": {"max_new_tokens": 256}}},
        "evaluation": {"base": False}, "analysis": {"enabled": False},
        "resources": {"default": {"gpus_per_node": 0, "cpus_per_task": 1, "mem_gb": 4, "time_minutes": 60},
                      "stages": {"sft-trainer": {"14B": {"gpus_per_node": 1}}}},
    }
    path = tmp_path / "big.yaml"
    path.write_text(yaml.safe_dump(study))
    res = check(path, tmp_path / "runs")
    assert res.exit_code == 2, res.output
    row = next(line for line in res.output.splitlines() if line.startswith("  FAIL sft-trainer"))
    assert "qwen3-14b.base.math.sf-sft.s0" in row and "memory: needs" in row and "H100-80GB allows" in row
    nodes, gpus = map(int, re.search(r"fits with: nodes: (\d+), gpus_per_node: (\d+)", row).groups())
    assert nodes * gpus > 1 and "verl.optimizer_offload: true" in row
    warning = next(line for line in res.output.splitlines() if line.startswith("warning: domain math"))
    assert "SF-SFT 2048" in warning and "SELF 256" in warning
    assert not (tmp_path / "runs").exists()


def test_the_shipped_studies_give_each_domains_methods_one_generation_budget(tmp_path, monkeypatch):
    from stages.study.checks import generation_budgets
    from stages.study.definition import load_study
    from stages.study.planner import plan_study

    monkeypatch.setenv("SCRATCH", str(tmp_path / "scratch"))
    for name in SHIPPED:
        plan = plan_study(load_study(name), str(tmp_path / "runs"), "local", check_paths=False)
        assert generation_budgets(plan) == [], name
