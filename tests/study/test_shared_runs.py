"""Shared runs: collections (the teacher collections above all) and the untrained model's evaluations live once under
``<root>/shared/`` and every study planning the same spec reuses them through the stage's skip-by-spec-hash.

Phase 2 plans phase 1's teacher collections (the same folders, the same manifests) and so writes and runs none of
its own; a different spec under the same run id gets a folder of its own; and a real collector run made by one study
is skipped by another.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from stages.study.cli import main
from stages.study.definition import load_study
from stages.study.planner import plan_study, write_plan
from stages.study.records import read_all, to_run

REPO = Path(__file__).resolve().parents[2]


def teacher_collections(plan) -> dict[str, str]:
    return {rid: r.manifest_path for rid, r in plan.runs.items() if r.stage == "collector" and r.labels["data"] in
            ("sf", "cf")}


def test_phase2_plans_no_teacher_collection_of_its_own(fake_scratch, tmp_path):
    root = tmp_path / "runs"
    phase1 = plan_study(load_study("phase1"), str(root), "mila")
    write_plan(phase1)
    phase2 = plan_study(load_study("phase2"), str(root), "mila")
    teachers = teacher_collections(phase2)
    assert len(teachers) == 6 and teachers == teacher_collections(phase1)  # 2 teachers x 3 domains, the same folders
    assert all(Path(p).parent.parent == root / "shared" for p in teachers.values())
    changed = write_plan(phase2)
    assert not set(teachers) & set(changed)  # phase 1 already wrote them: phase 2 rewrites nothing there
    assert not [p for p in (root / "phase2").iterdir() if p.name.startswith("data.")]
    assert {run.stage for rid, run in phase2.runs.items() if rid in changed} >= {"sft-trainer", "evaluator"}
    # the manifests name no study: planning phase 2 after phase 1 leaves them byte for byte
    sf = json.loads(Path(teachers["data.math.sf"]).read_text())
    assert sf["spec"]["runtime"]["tracking"]["group"] == "shared"
    # phase 2's trainers read phase 1's teacher data
    sft = phase2.runs["qwen3-4b.safe.math.sf-sft.s1"].manifest["spec"]["inputs"]["data"]["from"]
    assert sft.startswith(str(root / "shared" / "data.math.sf-"))
    # the untrained SAFE model is another model: its evaluations are its own (still under shared/, for later phases)
    base1 = phase1.runs["qwen3-4b.base.untrained.math.eval-all"].run_dir
    base2 = phase2.runs["qwen3-4b.safe.untrained.math.eval-all"].run_dir
    assert base1 != base2 and Path(base2).parent == root / "shared"
    # the sweep variant evaluates the same untrained model: it plans phase 1's evaluations
    sweep = plan_study(load_study("phase1-sweep"), str(root), "mila")
    assert sweep.runs["qwen3-4b.base.untrained.math.eval-all"].run_dir == base1


def test_another_spec_gets_its_own_folder_and_the_switch_keeps_runs_in_the_study(fake_scratch, tmp_path):
    root = tmp_path / "runs"
    phase1 = plan_study(load_study("phase1"), str(root), "mila")
    study = tmp_path / "fewer.yaml"
    study.write_text(yaml.safe_dump({"extends": "phase1", "study": "fewer", "collection": {"all": {"max_items": 500}}}))
    fewer = plan_study(load_study(str(study)), str(root), "mila")
    assert fewer.runs["data.math.sf"].run_dir != phase1.runs["data.math.sf"].run_dir
    assert Path(fewer.runs["data.math.sf"].run_dir).name.startswith("data.math.sf-")
    study.write_text(yaml.safe_dump({"extends": "phase1", "study": "own", "shared_runs": False}))
    own = plan_study(load_study(str(study)), str(root), "mila")
    assert own.runs["data.math.sf"].run_dir == str(root / "own" / "data.math.sf")
    labels = own.runs["qwen3-4b.base.untrained.math.eval-all"].manifest["spec"]["params"]["labels"]
    assert labels["study"] == "own"


@pytest.mark.slow  # a real collector run on the tiny model (about 35 s on 2 busy cores)
def test_a_collection_run_by_one_study_is_skipped_by_the_next(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)
    root = str(tmp_path / "runs")

    def plan(name: str):
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump({
            "extends": str(REPO / "manifests" / "studies" / "smoke.yaml"), "study": name,
            "stages": ["collector", "sft-trainer"], "domains": ["math"], "methods": ["SF-SFT"],
            "collection": {"all": {"max_items": 2, "batch_size": 2}, "generate": {"sampling": {"max_new_tokens": 4}}},
        }))
        return plan_study(load_study(str(path)), root)

    first = plan("first")
    write_plan(first)
    manifest = first.runs["data.math.sf"].manifest_path
    collector = [str(Path(sys.executable).parent / "collector"), "--manifest", manifest]
    ran = subprocess.run(collector, capture_output=True, text=True, check=False, timeout=300)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    record = Path(first.runs["data.math.sf"].record_path)
    before = record.read_text()
    assert json.loads(before)["status"]["state"] == "succeeded"

    second = plan("second")
    assert second.runs["data.math.sf"].manifest_path == manifest
    assert "data.math.sf" not in write_plan(second)
    assert "data.math.sf" not in to_run(second, read_all(second))  # the executors start nothing for it
    res = CliRunner().invoke(main, ["status", str(tmp_path / "second.yaml"), "--root", root])
    assert res.exit_code == 0, res.output
    assert "succeeded" in next(ln for ln in res.output.splitlines() if "data.math.sf" in ln).split()
    again = subprocess.run(collector, capture_output=True, text=True, check=False, timeout=300)
    assert again.returncode == 0 and "skipped: " in again.stdout and "same spec" in again.stdout, again.stdout
    assert record.read_text() == before
    assert not (tmp_path / "runs" / "second" / "data.math.sf").exists()
