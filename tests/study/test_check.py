"""``study check`` on the shipped studies: every planned manifest passes its own stage's validate and preflight
against a scratch staged from the fixtures, and each single fault (a missing model, a missing benchmark file, SELF
given 2 GPUs, a typo in the study) fails with its own message naming the cause. Nothing is written.

The stages check their manifests in their own processes (``<stage> check``), with real files: the tiny Qwen3 stands
in for every model folder, the fixture datasets and benchmark rows for the staged ones, and verl composes the
sft-trainer's config for real.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from stages.study.cli import main
from tests.study.conftest import SHIPPED


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


def test_self_on_two_gpus_is_refused_until_spin_can(staged_scratch, tmp_path):
    study = variant(tmp_path, resources={"stages": {"spin": {"4B": {"gpus_per_node": 2}}}})
    res = check(study, tmp_path / "runs")
    assert res.exit_code == 2, res.output
    assert "FAIL spin          qwen3-4b.base.math.self.s1" in res.output
    assert "not implemented yet: spin on 1 node(s) x 2 GPUs" in res.output and "gpus_per_node: 1" in res.output
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
    study = variant(tmp_path, resources={"stages": {"pi-distill": {"4B": {"gpus_per_node": 4}}}})
    res = CliRunner().invoke(main, ["submit", str(study), "--cluster", "local", "--dry-run", "--root",
                                    str(tmp_path / "runs")])
    assert res.exit_code == 2, res.output
    assert "pi-distill on 1 node(s) x 4 GPUs" in res.output and "nothing submitted" in res.stderr
    assert "#SBATCH" not in res.output
