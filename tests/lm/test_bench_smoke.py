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


def test_trace_gaps_finds_the_idle_time_between_kernels():
    sys.path.insert(0, str(REPO / "bench"))
    from trace_gaps import gpu_busy_intervals, summarize

    events = [
        {"cat": "kernel", "name": "a", "ts": 0, "dur": 100},
        {"cat": "kernel", "name": "b", "ts": 50, "dur": 100},  # overlaps a (another stream)
        {"cat": "gpu_memcpy", "name": "c", "ts": 1150, "dur": 50},
        {"cat": "cpu_op", "name": "outer", "ts": 0, "dur": 2000},
        {"cat": "cpu_op", "name": "aten::item", "ts": 200, "dur": 900},
    ]
    assert gpu_busy_intervals(events) == [(0, 150), (1150, 1200)]
    text = summarize({"traceEvents": events})
    assert "busy 0.2 ms (16.7%)" in text and "1 gaps" in text
    assert "gap    1.00 ms at +     0.1 ms: aten::item (0.9)" in text
