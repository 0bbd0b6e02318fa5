"""Helpers for collector tests: fixture manifests for each domain and mode, run in-process or as a process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

REPO = Path(__file__).resolve().parents[2]
DATASETS = {"math": ("math:GSM8K", "gsm-8k"), "code": ("code:CodeContest", "codecontest"),
            "qa": ("qa:NaturalQuestions", "naturalquestions")}


def write_manifest(tmp: Path, fixtures: Path, domain: str, mode: str, out: str = "out", name: str = "m.json",
                   model: bool = True, **params) -> Path:
    env_id, folder = DATASETS[domain]
    inputs = {"dataset": {"uri": str(fixtures / "datasets" / folder), "kind": "gem_dataset"}}
    if model:
        inputs["model"] = {"uri": str(fixtures / "tiny-qwen3"), "kind": "hf_model"}
    p = {"mode": mode, "env_id": env_id, "max_items": 4, "n_samples": 2, "batch_size": 2,
         "sampling": {"max_new_tokens": 8}}
    p.update(params)
    m = {"schema": "forgetting-llms/manifest/v1", "stage": "collector", "run_id": f"t.{domain}.{mode}",
         "spec": {"inputs": inputs, "params": p, "output_dir": str(tmp / out)}}
    path = tmp / name
    path.write_text(json.dumps(m))
    return path


def run_inproc(manifest: Path, *extra: str):
    from stages.collector.cli import main

    return CliRunner().invoke(main, ["--manifest", str(manifest), *extra])


def start_proc(manifest: Path) -> subprocess.Popen:
    return subprocess.Popen([str(Path(sys.executable).parent / "collector"), "--manifest", str(manifest)],
                            cwd=REPO, env=dict(os.environ), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def records(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "trajectories.jsonl").read_text().splitlines()]


def record_of(out: Path) -> dict:
    return json.loads((out / "manifest.json").read_text())


@pytest.fixture
def fx(fixtures_dir):
    return fixtures_dir
