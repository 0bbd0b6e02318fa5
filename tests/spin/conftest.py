"""Helpers for spin tests: a small prompt set, manifests, and running the stage in-process or as a process.

The prompt set is short arithmetic questions in the project's math template (the GSM8K env's columns and grader),
so a SPIN step costs a few hundred tokens on the tiny Qwen3: its 151,936-token vocabulary makes every token a large
matmul on a CPU, and the fixture's real GSM8K prompts (~250 tokens a pair) are kept for the example manifest test.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

REPO = Path(__file__).resolve().parents[2]

# a SPIN setting whose margin visibly grows on the random tiny model (a large constant lr), small enough for a CPU:
# 4 prompts, generation and reference chunks of 2, iteration 0 trains 4 pairs in 2 steps, iteration 1 eight pairs
# (its own and the previous iteration's) in 4 steps
FAST = {
    "iterations": 2, "epochs_per_iteration": 1, "global_batch_size": 2, "max_length": 128,
    "max_prompt_length": 96, "micro_batch_tokens": 1024, "generation_batch_size": 2,
    "sampling": {"max_new_tokens": 8}, "precision": {"bf16": False, "activation_checkpointing": False},
    "optim": {"lr": 3e-3, "schedule": "constant", "warmup_ratio": 0.0}, "save_every_steps": 2,
}
QUESTIONS = [(2, 3), (7, 5), (4, 4), (9, 1), (6, 2), (8, 3)]


def prompt_rows(n: int = 4) -> list[dict]:
    from stages.envs import build_messages

    rows = []
    for i, (a, b) in enumerate(QUESTIONS[:n]):
        rows.append({
            "data_source": "math:GSM8K",
            "prompt": build_messages("math", f"What is {a} + {b}?"),
            "ability": "math",
            "reward_model": {"style": "rule", "ground_truth": json.dumps({"answer": str(a + b)})},
            "extra_info": {"index": i, "split": "train",
                           "reference_solution": f"{a} + {b} = {a + b}. The answer is $\\boxed{{{a + b}}}$."},
        })
    return rows


def write_prompts(path: Path, rows: list[dict]) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def write_manifest(tmp: Path, model: Path, prompts: Path, out: str = "out", name: str = "m.json",
                   seed: int = 0, resources: dict | None = None, **params) -> Path:
    m = {
        "schema": "forgetting-llms/manifest/v1", "stage": "spin", "run_id": "t.spin",
        "spec": {
            "inputs": {"model": {"uri": str(model), "kind": "hf_model"},
                       "prompts": {"uri": str(prompts), "kind": "rl_prompts"}},
            "params": {**FAST, **params},
            "output_dir": str(tmp / out),
            "runtime": {"seed": seed},
            "resources": resources or {},
        },
    }
    path = tmp / name
    path.write_text(json.dumps(m))
    return path


def run_inproc(manifest: Path, *extra: str, env: dict | None = None):
    from stages.spin.cli import main

    return CliRunner().invoke(main, ["--manifest", str(manifest), *extra], env=env)


def run_proc(manifest: Path, env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).parent / "spin"
    return subprocess.run([str(exe), "--manifest", str(manifest)], cwd=REPO, env={**os.environ, **(env or {})},
                          capture_output=True, text=True, timeout=timeout, check=False)


def record_of(out: Path) -> dict:
    return json.loads((out / "manifest.json").read_text())


def jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def weights(model_dir: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(model_dir / "model.safetensors"))


@pytest.fixture(scope="session")
def spin_prompts(tmp_path_factory) -> Path:
    return write_prompts(tmp_path_factory.mktemp("spin-prompts") / "prompts.parquet", prompt_rows())


def train_steps(out: Path) -> list[dict]:
    return [r for r in jsonl(out / "metrics.jsonl") if r["phase"] == "train"]


@pytest.fixture(scope="session")
def plain_run(tmp_path_factory, tiny_model_dir, spin_prompts) -> tuple[Path, Path]:
    """The FAST setting in one process, uninterrupted: the run every resumed or multi-rank run is held against.
    Every iteration's model is kept (``iterations/iter-<t>``); the runs compared with it keep none."""
    tmp = tmp_path_factory.mktemp("spin-plain")
    manifest = write_manifest(tmp, tiny_model_dir, spin_prompts, save_iteration_models=True)
    res = run_inproc(manifest)
    assert res.exit_code == 0, res.output
    return tmp / "out", manifest


def where(out: Path) -> tuple[str, int, int]:
    """(phase, iteration, chunk) of the run's state file."""
    s = json.loads((out / "checkpoints" / "spin_state.json").read_text())
    return s["phase"], s["iteration"], s["chunk"]


def resume_until_done(manifest: Path, out: Path, env: dict, attempts: int) -> list[tuple[str, int, int]]:
    """Run in-process attempts until one succeeds; each other must be preempted (exit 75). Where each stopped."""
    stopped = []
    for _ in range(attempts):
        res = run_inproc(manifest, env=env)
        if res.exit_code == 0:
            return stopped
        assert res.exit_code == 75, res.output
        assert record_of(out)["status"]["state"] == "preempted"
        stopped.append(where(out))
    raise AssertionError(f"the run never finished in {attempts} attempts (stops: {stopped})")
