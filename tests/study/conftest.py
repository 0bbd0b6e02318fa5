"""Helpers for the conductor's tests: small studies made of the lifecycle test stage (``tests.core.counting_stage``,
run through its own CLI as an extra run with an explicit command), and fake scratch folders for the phase studies.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
COUNTER = [sys.executable, "-m", "tests.core.counting_stage"]
SMALL = {"cpus_per_task": 1, "mem_gb": 1, "time_minutes": 5}


def counter_run(run_id: str, after: list[str] | None = None, seed_from: str | None = None, **params: Any) -> dict:
    run: dict[str, Any] = {"run_id": run_id, "stage": "counter", "command": COUNTER, "params": params,
                           "resources": dict(SMALL)}
    if after:
        run["after"] = after
    if seed_from:
        run["inputs"] = {"seed_file": {"run": seed_from, "output": "result"}}
    return run


def write_study(folder: Path, name: str, runs: list[dict], **extra: Any) -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"study": name, "runs": runs, **extra}, sort_keys=False))
    return path


def diamond(folder: Path, name: str = "diamond", **a_params: Any) -> Path:
    """a -> (b, c) -> d: b and c read a's output; d waits for both."""
    return write_study(folder, name, [
        counter_run("a", steps=3, **a_params),
        counter_run("b", seed_from="a", steps=2),
        counter_run("c", seed_from="a", steps=4),
        counter_run("d", after=["b", "c"], steps=1),
    ])


def record(root: Path, study: str, run_id: str) -> dict:
    return json.loads((root / study / run_id / "out" / "manifest.json").read_text())


@pytest.fixture
def counter_env(monkeypatch):
    """Make ``python -m tests.core.counting_stage`` importable from any working directory."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    monkeypatch.chdir(REPO)


@pytest.fixture
def fake_scratch(tmp_path, monkeypatch) -> Path:
    """$SCRATCH with empty folders for every model and dataset the phase studies name."""
    from stages.envs.registry import ENVS
    from stages.study.definition import load_study

    scratch = tmp_path / "scratch"
    for name in ("phase1", "phase2", "phase3", "phase1-sweep"):
        for key, ck in load_study(name).models.checkpoints.items():
            (scratch / "forgetting-llms" / "models" / (ck.repo_id or key).rsplit("/", 1)[-1]).mkdir(
                parents=True, exist_ok=True)
    for env in ENVS.values():
        (scratch / "forgetting-llms" / "datasets" / env.folder).mkdir(parents=True, exist_ok=True)
    (scratch / "forgetting-llms" / "benchmarks").mkdir(parents=True, exist_ok=True)
    monkeypatch.setenv("SCRATCH", str(scratch))
    return scratch


SHIPPED = ("smoke", "phase1", "phase1-sweep", "phase2", "phase3")


def staged_benchmarks(dest: Path) -> Path:
    """A copy of the fixture benchmark rows, with databricks-dolly-15k (the refusal direction's harmless
    instructions), which is staged only on a cluster: the fixture GSM8K questions, harmless instructions too, stand
    in for it in its columns."""
    fixtures = REPO / ".fixtures" / "benchmarks"
    shutil.copytree(fixtures, dest)
    dolly = dest / "dolly" / "databricks-dolly-15k.jsonl"
    dolly.parent.mkdir()
    with open(fixtures / "gsm8k" / "test.jsonl", encoding="utf-8") as f:
        rows = [{"instruction": json.loads(line)["question"], "context": "", "category": "open_qa"} for line in f]
    dolly.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return dest


@pytest.fixture
def staged_scratch(tmp_path, monkeypatch) -> Path:
    """$SCRATCH laid out as the phase studies read it, staged from the fixtures: every model folder the studies name
    is the tiny Qwen3 (a symlink; the HarmBench classifier's folder holds its model card too), every dataset folder
    and the benchmark rows are the fixture ones. Unlike ``fake_scratch`` these folders hold real files, so each
    stage's preflight reads them for real."""
    from stages.study.definition import load_study

    fixtures = REPO / ".fixtures"
    if not (fixtures / "tiny-qwen3" / "config.json").is_file():
        pytest.fail("the fixtures are missing: run `make fixtures`")
    from tests.evaluator.judge_fixtures import classifier_folder

    root = tmp_path / "scratch" / "forgetting-llms"
    (root / "models").mkdir(parents=True)
    for name in SHIPPED:
        study = load_study(name)
        classifier = study.evaluation.judges.get("harmbench_classifier")
        for key, ck in study.models.checkpoints.items():
            link = root / "models" / (ck.repo_id or key).rsplit("/", 1)[-1]
            if link.exists() or ck.path:
                continue
            if key == classifier:  # the classifier's prompt comes from its model card, staged beside the weights
                classifier_folder(fixtures / "tiny-qwen3", link)
            else:
                link.symlink_to(fixtures / "tiny-qwen3")
    (root / "datasets").symlink_to(fixtures / "datasets")
    staged_benchmarks(root / "benchmarks")  # a copy: tests remove rows from it
    monkeypatch.setenv("SCRATCH", str(tmp_path / "scratch"))
    monkeypatch.chdir(REPO)  # the smoke study's paths are relative to the repository
    return root
