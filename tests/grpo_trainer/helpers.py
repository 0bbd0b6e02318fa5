"""Shared helpers for the grpo-trainer tests: fixture prompt sets in verl's RL schema, manifests, and running the
stage as a real process (the way the conductor and Slurm run it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
MATH_SOURCE = "math:GSM8K"


def rl_row(question: str, answer: str, index: int, source: str = MATH_SOURCE) -> dict[str, Any]:
    return {
        "data_source": source,
        "prompt": [{"role": "user", "content": question}],
        "ability": "math",
        "reward_model": {"style": "rule", "ground_truth": answer},
        "extra_info": {"index": index, "split": "train"},
    }


def write_parquet(path: Path, rows: list[dict[str, Any]]) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def arithmetic_rows(n: int, seed: int = 0) -> list[dict[str, Any]]:
    """Tiny sums whose answers are single digits, asked for in a boxed answer."""
    import random

    rng = random.Random(seed)
    rows = []
    for i in range(n):
        a, b = rng.randint(0, 4), rng.randint(0, 4)
        rows.append(rl_row(f"{a}+{b}=?", str(a + b), i))
    return rows


def manifest(tmp: Path, model: Path, prompts: Path, *, engine: str = "native", params: dict | None = None,
             resources: dict | None = None, name: str = "m.json", out: str = "out", **spec_extra: Any) -> Path:
    doc = {
        "schema": "forgetting-llms/manifest/v1",
        "stage": "grpo-trainer",
        "run_id": "grpo.test",
        "spec": {
            "inputs": {
                "model": {"uri": str(model), "kind": "hf_model"},
                "prompts": {"uri": str(prompts), "kind": "rl_prompts"},
            },
            "params": params or {},
            "output_dir": str(tmp / out),
            "resources": resources or {},
            "runtime": {"engine": engine, "seed": 0},
            **spec_extra,
        },
    }
    path = tmp / name
    path.write_text(json.dumps(doc, indent=1))
    return path


def stage_env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(REPO), PYTHONUNBUFFERED="1")


def start_stage(manifest_path: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "stages.grpo_trainer.cli", *args, "--manifest", str(manifest_path)],
        cwd=REPO, env=stage_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def run_stage(manifest_path: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    proc = start_stage(manifest_path, *args)
    out, err = proc.communicate(timeout=timeout)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def record(out_dir: Path) -> dict[str, Any]:
    return json.loads((out_dir / "manifest.json").read_text())
