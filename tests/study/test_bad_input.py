"""Bad study input is refused with exit code 2 and a message naming what is wrong, before anything is written or
submitted: unknown methods, domains, stages, engines or clusters, cycles, missing or absent model paths, invalid
stage params."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from stages.study.cli import main
from tests.study.conftest import counter_run, write_study

TINY = {"checkpoints": {"m": {"size": "tiny", "path": "/nonexistent/never/model"}}}


def study_file(tmp: Path, **over) -> Path:
    doc = {"study": "bad", "models": TINY, "students": [{"model": "m", "start": "BASE"}], "domains": ["math"],
           "methods": ["GT-SFT"], "data": {"root": str(tmp)}, "stages": ["collector", "sft-trainer"]}
    doc.update(over)
    path = tmp / "bad.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def refused(args: list[str], *needles: str, root: Path) -> str:
    res = CliRunner().invoke(main, [*args, "--root", str(root)])
    assert res.exit_code == 2, res.output
    text = res.stderr
    for n in needles:
        assert n in text, text
    assert not root.exists(), "nothing may be written"
    return text


@pytest.mark.parametrize("verb", [["plan"], ["run", "--executor", "local"], ["submit", "--cluster", "local"]])
def test_unknown_method(tmp_path, verb):
    path = study_file(tmp_path, methods=["GT-SFT", "GT_SFT"])
    refused([verb[0], str(path), *verb[1:]], "methods[1]", "unknown method 'GT_SFT'", "ON-RL",
            root=tmp_path / "runs")


def test_unknown_domain(tmp_path):
    refused(["plan", str(study_file(tmp_path, domains=["chemistry"]))], "domains[0]", "'chemistry'", "math, code, qa",
            root=tmp_path / "runs")


def test_unknown_stage_engine_and_key(tmp_path):
    refused(["plan", str(study_file(tmp_path, stages=["trainer"]))], "stages[0]", "unknown stage 'trainer'",
            root=tmp_path / "runs")
    refused(["plan", str(study_file(tmp_path, engines={"sft-trainer": "deepspeed"}))], "engines.sft-trainer",
            "native, verl", root=tmp_path / "runs")
    refused(["plan", str(study_file(tmp_path, method=["GT-SFT"]))], "method: unknown key", root=tmp_path / "runs")


def test_cycle_is_named(tmp_path):
    path = write_study(tmp_path, "loop", [counter_run("a", after=["c"]), counter_run("b", after=["a"]),
                                          counter_run("c", after=["b"])])
    refused(["submit", str(path), "--cluster", "local"], "cycle", "a -> c -> b -> a", root=tmp_path / "runs")


def test_missing_model_path_for_the_chosen_cluster(tmp_path):
    models = {"checkpoints": {"m": {"size": "4B", "paths": {"mila": "/network/m"}}}}
    text = refused(["submit", str(study_file(tmp_path, models=models)), "--cluster", "narval", "--dry-run"],
                   "model 'm' has no path for cluster 'narval'", "models.checkpoints.m.paths.narval",
                   root=tmp_path / "runs")
    assert "sbatch" not in text


def test_absent_model_folder(tmp_path):
    (tmp_path / "gsm-8k").mkdir()
    refused(["plan", str(study_file(tmp_path))], "input 'model'", "/nonexistent/never/model does not exist",
            root=tmp_path / "runs")


def test_invalid_stage_params_name_the_run_and_json_path(tmp_path):
    (tmp_path / "model").mkdir()
    (tmp_path / "gsm-8k").mkdir()
    models = {"checkpoints": {"m": {"size": "tiny", "path": str(tmp_path / "model")}}}
    refused(["plan", str(study_file(tmp_path, models=models, hyperparameters={"GT-SFT": {"epochs": -1}}))],
            "run m.base.math.gt-sft.s0", "$.spec.params.epochs", root=tmp_path / "runs")


def test_unknown_cluster_and_study(tmp_path):
    refused(["submit", str(study_file(tmp_path)), "--cluster", "cedar"], "unknown cluster 'cedar'", "narval",
            root=tmp_path / "runs")
    refused(["plan", "no-such-study"], "study file not found", "phase1", root=tmp_path / "runs")


def test_teacher_needed_by_a_method(tmp_path):
    refused(["plan", str(study_file(tmp_path, methods=["SF-SFT"]))], "same-family teacher", root=tmp_path / "runs")
