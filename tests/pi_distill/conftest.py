"""Helpers for pi-distill tests: fixture manifests on the real GSM8K prompt set, run in-process or as a process.

Runs use tiny settings (2 prompts x 2 samples a step, 8 new tokens) and one torch thread: the tiny model's cost is
the 152k-word vocabulary head, and on a busy 2-core machine a second intra-op thread mostly waits.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

REPO = Path(__file__).resolve().parents[2]

TINY: dict[str, Any] = {
    "group_size": 2, "prompts_per_step": 2, "mini_batch_size": 1, "max_steps": 2, "ppo_epochs": 1,
    "max_prompt_length": 512,
    "sampling": {"max_new_tokens": 8, "temperature": 1.0}, "student_eval_prompts": 1, "beta": 0.5,
    "drop_zero_variance_groups": False, "save_every_steps": 1, "log_rollouts_every_steps": 1,
    "optim": {"lr": 1e-4}, "precision": {"bf16": False, "activation_checkpointing": False},
}


def deep_merge(base: dict, extra: dict) -> dict:
    out = dict(base)
    for k, v in extra.items():
        out[k] = deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def write_manifest(tmp: Path, fixtures: Path, out: str = "out", name: str = "m.json", prompts: Path | None = None,
                   seed: int = 0, **params: Any) -> Path:
    m = {"schema": "forgetting-llms/manifest/v1", "stage": "pi-distill", "run_id": f"t.pi-distill.{out}",
         "spec": {"inputs": {"model": {"uri": str(fixtures / "tiny-qwen3"), "kind": "hf_model"},
                             "prompts": {"uri": str(prompts or fixtures / "prompts" / "gsm8k.parquet"),
                                         "kind": "rl_prompts"}},
                  "params": deep_merge(TINY, params), "output_dir": str(tmp / out), "runtime": {"seed": seed}}}
    path = tmp / name
    path.write_text(json.dumps(m))
    return path


def run_inproc(manifest: Path, *extra: str):
    from stages.pi_distill.cli import main

    return CliRunner().invoke(main, ["--manifest", str(manifest), *extra])


def run_proc(manifest: Path, env: dict[str, str] | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).parent / "pi-distill"
    full = dict(os.environ, OMP_NUM_THREADS="1", **(env or {}))
    return subprocess.run([str(exe), "--manifest", str(manifest)], check=False, cwd=REPO, env=full,
                          capture_output=True, text=True, timeout=timeout)


def record_of(out: Path) -> dict:
    return json.loads((out / "manifest.json").read_text())


def metrics_of(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines() if line.strip()]


@pytest.fixture
def fx(fixtures_dir):
    return fixtures_dir


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
