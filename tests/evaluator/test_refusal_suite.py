"""The refusal_direction suite for real on the tiny model, through the evaluator's CLI and lifecycle, network
blocked, local rows only: the baseline's own run (extracts the direction and writes its file), a perturbed copy
against the baseline given as base_model, the same copy against the baseline's file (the same direction and the
same numbers), the baseline's run stopped by SIGTERM mid-selection and resumed from what it kept, and bad input
refused before anything is written.

Harmless rows: a Dolly-layout file (instruction, context, category) built here from XSTest's safe prompts (CC BY 4.0),
since databricks-dolly-15k itself is staged only on a cluster; harmful rows: HarmBench's CSVs.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from stages.core.results import EvalResults
from stages.evaluator.cli import main as evaluator_cli
from stages.evaluator.refusal import store
from tests.evaluator.conftest import manifest, network_blocked

SMALL = {"n_train": 8, "n_val": 4, "n_eval": 4, "max_new_tokens": 4, "induce_threshold": -1000.0}
LAYERS, WIDTH = 2, 64  # the tiny Qwen3

# Two runs in separate processes: float32 forwards on a busy CPU agree to about 1e-5 relative, not bit for bit
# (seen: 2e-5 on a projection of -0.04).
ACROSS_RUNS = {"rel": 1e-4, "abs": 1e-7}


@pytest.fixture(scope="module")
def rows(benchmarks_dir, has_harmbench, tmp_path_factory) -> Path:
    if not has_harmbench:
        pytest.skip("HarmBench behaviour CSVs not found")
    root = tmp_path_factory.mktemp("refusal-rows")
    shutil.copytree(benchmarks_dir / "harmbench", root / "harmbench")
    with open(benchmarks_dir / "xstest_prompts.csv", encoding="utf-8", newline="") as f:
        safe = [r for r in csv.DictReader(f) if r["label"] == "safe"]
    (root / "dolly").mkdir()
    with open(root / "dolly" / "databricks-dolly-15k.jsonl", "w", encoding="utf-8") as f:
        for r in safe[:40]:
            f.write(json.dumps({"instruction": r["prompt"], "context": "", "category": f"xstest:{r['type']}"}) + "\n")
        context = {"instruction": "Summarise this.", "context": "A text.", "category": "summarization"}
        f.write(json.dumps(context) + "\n")  # a row with a context: left out
    return root


def evaluate(tmp: Path, name: str, inputs: dict, direction: dict | None = None,
             out: Path | None = None) -> tuple[int, Path]:
    out = out or tmp / name
    params = {"suite": "refusal_direction", "batch_size": 8, "refusal_direction": {**SMALL, **(direction or {})}}
    m = manifest(tmp / f"{name}.json", f"tiny.{name}", inputs, params, out)
    with network_blocked():
        res = CliRunner().invoke(evaluator_cli, ["--manifest", str(m)], catch_exceptions=False)
    return res.exit_code, out


def block_of(out: Path) -> dict:
    doc = json.loads((out / "results.json").read_text())
    EvalResults.model_validate(doc)
    assert json.loads((out / "manifest.json").read_text())["status"]["state"] == "succeeded"
    return doc["extensions"]["refusal_direction"]


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("refusal-direction")


def scored_candidates(path: Path) -> int:
    """Rows of candidates.jsonl with scores (a line being written is skipped)."""
    n = 0
    for line in path.read_text().splitlines():
        try:
            n += json.loads(line).get("bypass_score") is not None
        except ValueError:
            pass
    return n


@pytest.fixture(scope="module")
def baseline(work, tiny_model_dir, rows) -> dict:
    """The baseline's own run, stopped by SIGTERM once it has scored a candidate, then run again to the end."""
    out = work / "safe"
    scratch = out / "checkpoints" / "refusal_direction"
    inputs = {"model": (tiny_model_dir, "hf_model"), "benchmarks": (rows, "benchmark_data")}

    def stop_after_first_candidate() -> None:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            f = scratch / "candidates.jsonl"
            if f.is_file() and scored_candidates(f) >= 1:
                os.kill(os.getpid(), signal.SIGTERM)
                return
            time.sleep(0.001)

    # a SIGTERM landing after the run restored the handlers (it finished first) must not end the test session
    before = signal.signal(signal.SIGTERM, lambda *_: None)
    try:
        watcher = threading.Thread(target=stop_after_first_candidate, daemon=True)
        watcher.start()
        code, _ = evaluate(work, "safe", inputs, out=out)
        watcher.join(timeout=5)
    finally:
        signal.signal(signal.SIGTERM, before)
    stopped = {"code": code, "state": json.loads((out / "manifest.json").read_text())["status"]["state"],
               "train_mtime": (scratch / "base-train.pt").stat().st_mtime_ns,
               "scored": len((scratch / "candidates.jsonl").read_text().splitlines()),
               "file_written": (out / store.FILE_NAME).exists()}
    code, _ = evaluate(work, "safe", inputs, out=out)
    assert code == 0, (out / "manifest.json").read_text()
    return {"out": out, "stopped": stopped, "train_mtime": (scratch / "base-train.pt").stat().st_mtime_ns,
            "scored": len((scratch / "candidates.jsonl").read_text().splitlines())}


@pytest.fixture(scope="module")
def against_base_model(work, tiny_model_dir, perturbed_model_dir, rows, baseline) -> Path:
    inputs = {"model": (perturbed_model_dir, "hf_model"), "base_model": (tiny_model_dir, "hf_model"),
              "benchmarks": (rows, "benchmark_data")}
    code, out = evaluate(work, "post", inputs)
    assert code == 0, (out / "manifest.json").read_text()
    return out


def test_the_baselines_own_run_extracts_and_writes_its_direction(baseline):
    b = block_of(baseline["out"])
    assert b["version"] == 1 and b["source"] == "extracted" and b["base"] == "self"
    assert b["n_layers"] == LAYERS and b["hidden_size"] == WIDTH and b["n_harmful"] == b["n_harmless"] == 4
    assert b["layer"] == 1 and -b["n_positions"] <= b["position"] < 0  # layer 0 reads the same embeddings
    assert b["cosine_per_layer"][0] is None and b["cosine_per_layer"][1] == pytest.approx(1.0)
    assert b["projection_per_layer"] == pytest.approx(b["base_projection_per_layer"])
    assert set(b["refusal_rate"]) == set(b["refusal_score"]) == {"none", "ablation", "addition"}
    assert all(0.0 <= v <= 1.0 for v in b["refusal_rate"].values())
    assert b["refusal_score"]["ablation"] != b["refusal_score"]["none"]  # the interventions act
    candidates, direction, info = store.read(baseline["out"] / store.FILE_NAME)
    assert candidates.shape[:2] == (LAYERS, b["n_positions"]) and direction.shape == (WIDTH,)
    assert info["layer"] == b["layer"] and info["position"] == b["position"]
    assert float((direction - candidates[b["layer"], b["position"]]).abs().max()) == 0.0
    samples = baseline["out"] / "samples" / "refusal_direction.jsonl"
    records = [json.loads(line) for line in samples.read_text().splitlines()]
    assert len(records) == 4 * 4 and {r["extra"]["condition"] for r in records} == {"none", "ablation", "addition",
                                                                                     "none_harmless"}


def test_a_checkpoint_against_the_base_model_and_against_its_file_agree(work, against_base_model, baseline,
                                                                        perturbed_model_dir, rows):
    b = block_of(against_base_model)
    base = block_of(baseline["out"])
    assert b["source"] == "extracted" and b["base"] != "self"
    assert b["layer"] == base["layer"] and b["position"] == base["position"]
    assert b["base_projection_per_layer"] == pytest.approx(base["projection_per_layer"], **ACROSS_RUNS)
    assert b["cosine_per_layer"][1] < 0.9999  # the perturbation shows
    assert b["projection_per_layer"] != pytest.approx(b["base_projection_per_layer"])
    _, d_base, _ = store.read(baseline["out"] / store.FILE_NAME)
    _, d_post, _ = store.read(against_base_model / store.FILE_NAME)
    # the same direction, extracted again in one go (to float32 noise across processes)
    assert float((d_base - d_post).abs().max()) <= ACROSS_RUNS["rel"] * float(d_base.abs().max())

    inputs = {"model": (perturbed_model_dir, "hf_model"), "benchmarks": (rows, "benchmark_data")}
    code, out = evaluate(work, "post-file", inputs, {"base_direction": str(baseline["out"] / store.FILE_NAME)})
    assert code == 0, (out / "manifest.json").read_text()
    f = block_of(out)
    assert f["source"] == "file" and not (out / store.FILE_NAME).exists()
    assert f["base_direction_sha256"] == store.sha256(baseline["out"] / store.FILE_NAME)
    for key in ("layer", "position", "n_harmful", "n_harmless", "digests"):
        assert f[key] == b[key], key
    for key in ("projection_per_layer", "base_projection_per_layer"):
        assert f[key] == pytest.approx(b[key], **ACROSS_RUNS), key
    assert f["cosine_per_layer"][1] == pytest.approx(b["cosine_per_layer"][1], **ACROSS_RUNS)
    assert f["refusal_score"] == pytest.approx(b["refusal_score"], **ACROSS_RUNS)
    assert f["refusal_rate"] == b["refusal_rate"]


def test_a_run_stopped_mid_selection_resumes_from_what_it_kept(baseline):
    stopped = baseline["stopped"]
    assert stopped["code"] == 75 and stopped["state"] == "preempted" and not stopped["file_written"]
    # tiny: 2 layers x 9 post-instruction positions; layer 0 (the embeddings) has no difference, layer 1 is scored
    assert 9 < stopped["scored"] < 18
    assert baseline["train_mtime"] == stopped["train_mtime"]  # its means were kept, not recomputed
    assert baseline["scored"] == 18  # the rest were scored once, none twice
    record = json.loads((baseline["out"] / "manifest.json").read_text())
    assert record["status"]["state"] == "succeeded" and record["status"]["attempt"] == 2


def test_bad_input_is_refused_before_anything_is_written(tiny_model_dir, rows, baseline, tmp_path):
    import torch

    inputs = {"model": (tiny_model_dir, "hf_model"), "benchmarks": (rows, "benchmark_data")}
    code, out = evaluate(tmp_path, "missing-base", inputs, {"base_direction": str(tmp_path / "nowhere.safetensors")})
    assert code == 2 and not out.exists()
    _, _, info = store.read(baseline["out"] / store.FILE_NAME)
    narrow = store.write(tmp_path / "narrow.safetensors", torch.zeros(LAYERS, 9, 32), torch.ones(32), info)
    code, out = evaluate(tmp_path, "wrong-width", inputs, {"base_direction": str(narrow)})
    assert code == 2 and not out.exists()
    made = str(baseline["out"] / store.FILE_NAME)
    code, out = evaluate(tmp_path, "other-seed", inputs, {"base_direction": made, "seed": 1})
    assert code == 2 and not out.exists()
    both = {**inputs, "base_model": (tiny_model_dir, "hf_model")}
    code, out = evaluate(tmp_path, "both", both, {"base_direction": made})
    assert code == 2 and not out.exists()
    code, out = evaluate(tmp_path, "too-many", inputs, {"n_train": 150, "n_val": 40, "n_eval": 40})
    assert code == 2 and not out.exists()


def test_a_plan_time_check_waits_for_the_baselines_file(tiny_model_dir, rows, tmp_path):
    from stages.core.check import check_manifest
    from stages.evaluator.stage import STAGE

    inputs = {"model": (tiny_model_dir, "hf_model"), "benchmarks": (rows, "benchmark_data")}
    params = {"suite": "refusal_direction", "refusal_direction": {**SMALL, "base_direction": str(
        tmp_path / "safe" / store.FILE_NAME)}}
    raw = json.loads(manifest(tmp_path / "m.json", "tiny.plan", inputs, params, tmp_path / "out").read_text())
    result = check_manifest(STAGE, raw)
    assert result.ok and result.deferred == ["the checks after reading refusal_direction.base_direction"]
    result = check_manifest(STAGE, {**raw, "spec": {**raw["spec"], "params": {**params, "refusal_direction": {
        **params["refusal_direction"], "n_train": 500}}}})
    assert not result.ok and "fewer than" in result.problem
