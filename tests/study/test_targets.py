"""The ground-truth target kind: a method that trains on the ground truth (GT-SFT's targets, SELF's chosen side, PI's
privileged information) is refused on a dataset without worked solutions, naming the dataset, unless the study opts
in; the kind is read from the data and carried into the evaluations' labels (what the analyzer shows).

Datasets here are the fixture folders, rewritten without their ``solution`` column where a test needs GEM's bare
layout (problem/answer, problem/tests).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from click.testing import CliRunner

from stages.envs.solutions import WORKED_MIN_RATE, target_kind
from stages.study.cli import main
from stages.study.definition import load_study
from stages.study.errors import StudyError
from stages.study.planner import plan_study

REPO = Path(__file__).resolve().parents[2]


def without_solutions(root: Path, folder: str, keep: int = 0) -> Path:
    """The fixture datasets with ``folder``'s splits stripped of worked solutions (the first ``keep`` rows keep
    theirs)."""
    shutil.copytree(REPO / ".fixtures" / "datasets", root, dirs_exist_ok=True)
    for split in (root / folder).glob("*.parquet"):
        rows = pq.read_table(split).to_pylist()
        for i, r in enumerate(rows):
            if i >= keep:
                r["solution"] = None
        pq.write_table(pa.Table.from_pylist(rows), split)
    return root


def study_file(tmp: Path, datasets: Path, **over) -> Path:
    path = tmp / "targets.yaml"
    path.write_text(yaml.safe_dump({"extends": str(REPO / "manifests" / "studies" / "smoke.yaml"), "study": "targets",
                                    "data": {"root": str(datasets)}, **over}))
    return path


def test_check_refuses_gt_sft_on_a_dataset_without_worked_solutions(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)
    datasets = without_solutions(tmp_path / "datasets", "gsm-8k")
    res = CliRunner().invoke(main, ["check", str(study_file(tmp_path, datasets)), "--root", str(tmp_path / "runs")])
    assert res.exit_code == 2, res.output
    msg = res.stderr
    assert "run tiny.base.math.gt-sft.s1: GT-SFT on math trains its SFT targets on worked solutions" in msg
    assert f"dataset math:GSM8K at {datasets / 'gsm-8k' / 'train.parquet'} has answer-only targets" in msg
    assert "(0 of 40 rows carry a worked solution)" in msg and "answer_only_targets: true" in msg
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(("folder", "domain", "kind"), [("gsm-8k", "math", "answer-only"),
                                                         ("codecontest", "code", "missing")])
def test_each_ground_truth_method_is_refused_and_the_opt_in_records_the_kind(tmp_path, folder, domain, kind):
    datasets = without_solutions(tmp_path / "datasets", folder)
    for method, what in (("SELF", "the chosen side of its pairs"), ("PI", "the teacher's privileged information")):
        study = load_study(str(study_file(tmp_path, datasets, methods=[method], domains=[domain])))
        with pytest.raises(StudyError, match=f"{method} on {domain} trains {what} on worked solutions.*{kind}"):
            plan_study(study, str(tmp_path / "runs"), check_paths=False)
    study = load_study(str(study_file(tmp_path, datasets, answer_only_targets=True, domains=[domain])))
    plan = plan_study(study, str(tmp_path / "runs"))
    for method in ("gt-sft", "self", "pi"):
        labels = plan.runs[f"tiny.base.{domain}.{method}.s1.eval-all"].manifest["spec"]["params"]["labels"]
        assert labels["target_kind"] == kind, method
    rl = plan.runs[f"tiny.base.{domain}.on-rl.s1.eval-all"].manifest["spec"]["params"]["labels"]
    assert rl["target_kind"] is None  # ON-RL trains on rewards, not on the ground truth's text


def test_pi_shown_only_the_answer_needs_no_worked_solution(tmp_path):
    datasets = without_solutions(tmp_path / "datasets", "gsm-8k")
    study = load_study(str(study_file(tmp_path, datasets, methods=["PI"], domains=["math"],
                                      hyperparameters={"PI": {"max_steps": 1, "privileged_source": "answer"}})))
    plan = plan_study(study, str(tmp_path / "runs"))
    assert plan.runs["tiny.base.math.pi.s1"].labels["target_kind"] == "answer-only"


def test_qa_trains_on_its_answer_and_staged_solutions_are_worked(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)
    plan = plan_study(load_study("smoke"), str(tmp_path / "runs"))  # the fixtures carry worked solutions
    labels = {rid: r.labels.get("target_kind") for rid, r in plan.runs.items()
              if rid.endswith((".gt-sft.s1", ".gt-sft.s1.eval-all"))}
    assert labels == {"tiny.base.math.gt-sft.s1": "worked-solution", "tiny.base.code.gt-sft.s1": "worked-solution",
                      "tiny.base.qa.gt-sft.s1": "answer-only", "tiny.base.math.gt-sft.s1.eval-all": "worked-solution",
                      "tiny.base.code.gt-sft.s1.eval-all": "worked-solution",
                      "tiny.base.qa.gt-sft.s1.eval-all": "answer-only"}


def test_the_kind_follows_the_share_of_rows_with_a_solution(tmp_path):
    rows = 40
    enough = int(WORKED_MIN_RATE * rows + 0.999)
    for keep, kind in ((rows, "worked-solution"), (enough, "worked-solution"), (enough - 1, "answer-only"),
                       (0, "answer-only")):
        root = without_solutions(tmp_path / f"d{keep}", "gsm-8k", keep=keep)
        got = target_kind(root / "gsm-8k", "math:GSM8K")
        assert (got.kind, got.with_solution, got.rows) == (kind, keep, rows)
    assert target_kind(tmp_path / "nowhere", "math:GSM8K") is None
