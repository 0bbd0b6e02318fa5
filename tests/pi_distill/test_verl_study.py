"""The phase files' PI runs with the resources they should carry on verl: phase 1 planned with
``engines: {pi-distill: verl}`` and 2 GPUs per PI run (what grpo-trainer gets), and every planned PI manifest
through ``pi-distill check`` (what ``study check`` runs for them: validate, the verl batch rules and verl's own
config validation), against a scratch staged from the fixtures. The same runs on the native engine are refused,
naming the verl engine."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from tests.study.conftest import staged_scratch  # noqa: F401 - the fixture: $SCRATCH staged from the fixtures

pytest.importorskip("verl")

PI_ON_TWO_GPUS = {"stages": {"pi-distill": {"4B": {"gpus_per_node": 2, "cpus_per_task": 8, "mem_gb": 48,
                                                     "time_minutes": 480}}}}


def pi_manifests(tmp: Path, engine: str) -> list[dict]:
    from stages.study.definition import load_study
    from stages.study.planner import plan_study

    path = tmp / f"pi-{engine}.yaml"
    path.write_text(yaml.safe_dump({"extends": "phase1", "study": f"pi-{engine}", "methods": ["PI"],
                                    "engines": {"pi-distill": engine}, "resources": PI_ON_TWO_GPUS}))
    plan = plan_study(load_study(str(path)), str(tmp / "runs"), "local", check_paths=False)
    return [r.manifest for r in plan.runs.values() if r.manifest.get("stage") == "pi-distill"]


def check(manifests: list[dict]) -> list[dict]:
    from stages.pi_distill.cli import main

    res = CliRunner().invoke(main, ["check", "--json", "--manifest", "-"], input=json.dumps(manifests))
    return [json.loads(line) for line in res.output.splitlines() if line.startswith("{")]


def test_phase1_pi_runs_check_on_verl_with_two_gpus(staged_scratch, tmp_path):  # noqa: F811
    manifests = pi_manifests(tmp_path, "verl")
    assert len(manifests) == 5  # math x 3 seeds, code, qa
    for m in manifests:
        assert m["spec"]["runtime"]["engine"] == "verl" and m["spec"]["resources"]["gpus_per_node"] == 2
    results = check(manifests)
    assert len(results) == 5 and all(r["ok"] for r in results), results
    assert all("prompts" in " ".join(r["deferred"]) for r in results)  # the collector has not run yet


def test_the_native_engine_refuses_them_naming_verl(staged_scratch, tmp_path):  # noqa: F811
    results = check(pi_manifests(tmp_path, "native"))
    assert results and not any(r["ok"] for r in results)
    assert all("use runtime.engine verl" in r["problem"] for r in results)
