"""Helpers for lifecycle tests: write manifests for the counting stage and run it as a real process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def counter_manifest(tmp: Path, name: str = "m.json", **params) -> Path:
    m = {
        "schema": "forgetting-llms/manifest/v1",
        "stage": "counter",
        "run_id": "counter.test",
        "spec": {"params": params, "output_dir": str(tmp / "out")},
    }
    p = tmp / name
    p.write_text(json.dumps(m))
    return p


def start_counter(manifest: Path, *extra: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.Popen(
        [sys.executable, "-m", "tests.core.counting_stage", "--manifest", str(manifest), *extra],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def run_counter(manifest: Path, *extra: str, timeout: float = 120) -> subprocess.CompletedProcess:
    p = start_counter(manifest, *extra)
    out, err = p.communicate(timeout=timeout)
    return subprocess.CompletedProcess(p.args, p.returncode, out, err)


@pytest.fixture
def counter(tmp_path):
    return lambda **params: counter_manifest(tmp_path, **params)
