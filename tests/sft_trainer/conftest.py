"""Helpers for sft-trainer tests: a small real SFT set, manifests, and the stage run as a real process.

Why real GSM8K rows: the chat template, lengths and loss masks behave as on the study's data. The shortest rows are
taken so verl's CPU run (a 152k-token vocabulary makes every token costly) stays a few seconds per step.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]


def gsm8k_conversations(n: int) -> list[list[dict[str, str]]]:
    """The ``n`` shortest GSM8K training rows as [user question, assistant worked solution] conversations."""
    from tests.fixtures.build import shared_data

    rows = [json.loads(line) for line in (shared_data() / "gsm8k" / "train.jsonl").read_text().splitlines() if line]
    rows.sort(key=lambda r: (len(r["question"]) + len(r["answer"]), r["question"]))
    return [[{"role": "user", "content": r["question"]}, {"role": "assistant", "content": r["answer"]}]
            for r in rows[:n]]


def write_messages_parquet(path: Path, conversations: list[Any], **extra_columns: list[Any]) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({"messages": conversations, **extra_columns}), path)
    return path


@pytest.fixture(scope="session")
def sft_parquet(tmp_path_factory) -> Path:
    """40 short GSM8K conversations in verl's ``messages`` schema."""
    return write_messages_parquet(tmp_path_factory.mktemp("sft") / "gsm8k.parquet", gsm8k_conversations(40))


def sft_manifest(tmp: Path, model: Path, data: Path, *, engine: str | None = "verl", run_id: str = "tiny.gsm8k.gt-sft",
                 params: dict[str, Any] | None = None, resources: dict[str, Any] | None = None,
                 name: str = "m.json", output_dir: Path | None = None) -> Path:
    """A fixture manifest: the tiny model, a few steps of a few short rows; ``params`` override the defaults."""
    base = {"epochs": 1, "global_batch_size": 4, "max_length": 512, "micro_batch_tokens": 1024, "val_fraction": 0.1,
            "save_every_steps": 3, "optim": {"lr": 2e-3, "warmup_ratio": 0.0},
            "precision": {"activation_checkpointing": False}}
    base.update(params or {})
    runtime: dict[str, Any] = {"seed": 0}
    if engine:
        runtime["engine"] = engine
    m = {
        "schema": "forgetting-llms/manifest/v1",
        "stage": "sft-trainer",
        "run_id": run_id,
        "spec": {
            "inputs": {"model": {"uri": str(model), "kind": "hf_model"}, "data": {"uri": str(data), "kind": "sft_data"}},
            "params": base,
            "output_dir": str(output_dir or tmp / "out"),
            "runtime": runtime,
            "resources": resources or {},
        },
    }
    path = tmp / name
    path.write_text(json.dumps(m, indent=1))
    return path


def start_stage(manifest: Path, *extra: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.Popen([sys.executable, "-m", "stages.sft_trainer.cli", "--manifest", str(manifest), *extra],
                            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def run_stage(manifest: Path, *extra: str, timeout: float = 600) -> subprocess.CompletedProcess:
    p = start_stage(manifest, *extra)
    out, err = p.communicate(timeout=timeout)
    return subprocess.CompletedProcess(p.args, p.returncode, out, err)


def record(out_dir: Path) -> dict[str, Any]:
    return json.loads((out_dir / "manifest.json").read_text())


def metrics(out_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in (out_dir / "metrics.jsonl").read_text().splitlines() if x.strip()]
