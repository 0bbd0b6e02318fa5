"""The GPU benchmarks' --tiny CPU modes run end to end and write their result files (timings are not asserted)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.lm.helpers import REPO


@pytest.mark.slow
def test_native_engine_benchmark_tiny(tmp_path):
    cmd = [sys.executable, "bench/bench_native_engine.py", "--tiny", "--out", str(tmp_path), "--variants", "native-eager,naive"]
    subprocess.run(cmd, cwd=REPO, check=True, capture_output=True, timeout=900)
    payload = json.loads((tmp_path / "native_engine.json").read_text())
    assert [r["loop"].split(" ")[0] for r in payload["results"]] == ["native", "naive"]
    assert all("error" not in r and r["real_tokens_per_s"] > 0 for r in payload["results"])
    assert "real tokens/s" in (tmp_path / "native_engine.md").read_text()


def test_hf_generate_benchmark_tiny(tmp_path):
    cmd = [sys.executable, "bench/bench_hf_generate.py", "--tiny", "--out", str(tmp_path)]
    subprocess.run(cmd, cwd=REPO, check=True, capture_output=True, timeout=600)
    payload = json.loads((tmp_path / "hf_generate.json").read_text())
    assert [r["batch"] for r in payload["results"]] == [4, 8]
    assert all(r["generated_tokens"] == r["batch"] * r["new_tokens"] for r in payload["results"])
