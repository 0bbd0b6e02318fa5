"""bench/bench_spin.py's --tiny CPU mode runs every phase and writes its result files (timings are not asserted)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.spin.conftest import REPO


@pytest.mark.slow
def test_spin_benchmark_tiny(tmp_path):
    cmd = [sys.executable, "bench/bench_spin.py", "--tiny", "--hf", "--offload", "off", "--out", str(tmp_path)]
    subprocess.run(cmd, cwd=REPO, check=True, capture_output=True, timeout=900)
    payload = json.loads((tmp_path / "spin_iteration.json").read_text())
    gen, (train,) = payload["generation"], payload["training"]
    assert gen["backend"].startswith("hf") and gen["generated_tokens"] == 8 * 8 and gen["tokens_per_s"] > 0
    assert train["steps"] == 2 and train["train_tokens_per_s"] > 0 and "error" not in train
    assert train["losses"][0] == pytest.approx(0.6931, abs=1e-3)  # policy = reference before the first update
    assert "| generation |" in (tmp_path / "spin_iteration.md").read_text()
