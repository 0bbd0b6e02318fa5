"""The representations suite for real on the tiny model, through the evaluator's CLI and lifecycle, network blocked,
local rows only: the base alone (probes only), a perturbed copy against the base (CKA, probes, weight deltas), the
base against itself (the known answers: CKA 1, the probe's readout unchanged, ΔW = 0), a run that resumes from rows
an earlier attempt left, and bad input refused before anything is written.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from stages.core.results import EvalResults
from stages.evaluator.cli import main as evaluator_cli
from tests.evaluator.conftest import manifest, network_blocked

REP = {"texts_per_set": 10, "max_tokens": 40, "probe_questions": 16, "probe_folds": 4, "top_k": 4}
SETS = ["math", "code", "qa", "general"]
LAYERS = 3  # the tiny Qwen3's embeddings and its 2 blocks
MATRICES = 1 + 2 * 7  # embed_tokens (tied) and q, k, v, o, gate, up, down per block


def evaluate(tmp: Path, name: str, inputs: dict, rep: dict | None = None, out: Path | None = None) -> tuple[int, Path]:
    out = out or tmp / name
    params = {"suite": "representations", "batch_size": 4, "representations": {**REP, **(rep or {})}}
    m = manifest(tmp / f"{name}.json", f"tiny.{name}", inputs, params, out)
    with network_blocked():
        res = CliRunner().invoke(evaluator_cli, ["--manifest", str(m)], catch_exceptions=False)
    return res.exit_code, out


def block_of(out: Path) -> dict:
    doc = json.loads((out / "results.json").read_text())
    EvalResults.model_validate(doc)
    assert json.loads((out / "manifest.json").read_text())["status"]["state"] == "succeeded"
    assert not list((out / "checkpoints" / "representations").glob("acts-*.npz"))  # scratch removed when done
    return doc["extensions"]["representations"]


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("representations")


@pytest.fixture(scope="module")
def compared(work, tiny_model_dir, perturbed_model_dir, benchmarks_dir) -> dict:
    inputs = {"model": (perturbed_model_dir, "hf_model"), "base_model": (tiny_model_dir, "hf_model"),
              "benchmarks": (benchmarks_dir, "benchmark_data")}
    code, out = evaluate(work, "post", inputs)
    assert code == 0, (out / "manifest.json").read_text()
    return block_of(out)


def test_base_alone_gets_its_probe_accuracy_only(work, tiny_model_dir, benchmarks_dir):
    inputs = {"model": (tiny_model_dir, "hf_model"), "benchmarks": (benchmarks_dir, "benchmark_data")}
    code, out = evaluate(work, "base", inputs, {"sets": ["qa"]})
    assert code == 0
    block = block_of(out)
    assert block["base_model"] is None and block["cka"] == [] and block["weights"] == []
    assert [r["layer"] for r in block["probes"]] == list(range(LAYERS))
    for r in block["probes"]:
        assert set(r) == {"layer", "n", "post", "control"} and r["n"] == 2 * REP["probe_questions"]
        assert 0.0 <= r["post"] <= 1.0 and 0.0 <= r["control"] <= 1.0


def test_post_against_base_has_every_row(compared):
    b = compared
    assert b["version"] == 1 and b["layers"] == LAYERS and b["hidden_size"] == 64
    assert set(b["sets"]) == set(SETS) and all(s["n"] == REP["texts_per_set"] for s in b["sets"].values())
    assert b["probe_set"]["n"] == 2 * REP["probe_questions"] and b["probe_set"]["digest"].startswith("sha256:")
    assert [(r["set"], r["layer"]) for r in b["cka"]] == [(s, i) for s in SETS for i in range(LAYERS)]
    for r in b["cka"]:
        assert 0.0 < r["linear"] <= 1.0 + 1e-9 and r["debiased"] is not None and r["n"] == REP["texts_per_set"]
    assert any(r["linear"] < 0.999 for r in b["cka"])  # the perturbation shows somewhere
    assert [r["layer"] for r in b["probes"]] == list(range(LAYERS))
    assert all({"base", "transfer", "post", "control", "agreement"} <= set(r) for r in b["probes"])
    assert len(b["weights"]) == MATRICES and b["weights_in_one_checkpoint_only"] == []
    q = next(r for r in b["weights"] if r["layer"] == 1 and r["module"] == "self_attn.q_proj")
    assert q["shape"] == [128, 64] and q["k"] == REP["top_k"] and q["exact"] is True
    for r in b["weights"]:  # seeded noise of 0.02 on every weight: a full-rank, non-zero delta
        assert r["fro"] > 0 and 1.0 <= r["stable_rank"] <= r["max_rank"] + 1e-6
        assert 0.0 < r["effective_rank_ratio"] <= 1.0 and 0.0 < r["energy_top_k"] <= 1.0
        assert 0.0 <= r["overlap_left"] <= 1.0 + 1e-6 and 0.0 <= r["overlap_right"] <= 1.0 + 1e-6


def test_a_model_against_itself_gives_the_known_answers(work, tiny_model_dir, benchmarks_dir):
    inputs = {"model": (tiny_model_dir, "hf_model"), "base_model": (tiny_model_dir, "hf_model"),
              "benchmarks": (benchmarks_dir, "benchmark_data")}
    code, out = evaluate(work, "self", inputs, {"sets": ["math", "general"], "spectrum": "randomized"})
    assert code == 0
    b = block_of(out)
    for r in b["cka"]:
        assert r["linear"] == pytest.approx(1.0, abs=1e-6) and r["debiased"] == pytest.approx(1.0, abs=1e-6)
    for r in b["probes"]:
        assert r["transfer"] == r["base"] == r["post"] and r["agreement"] == 1.0
    assert all(r["fro"] == 0.0 and r["effective_rank"] is None for r in b["weights"])


def test_a_resumed_run_keeps_the_rows_it_finished(work, tiny_model_dir, perturbed_model_dir, benchmarks_dir,
                                                   compared):
    out = work / "resumed"
    rows = out / "checkpoints" / "representations"
    rows.mkdir(parents=True)
    done = {"set": "qa", "layer": 1, "n": 10, "linear": 0.123, "debiased": 0.045}  # as an earlier attempt left it
    (rows / "cka.jsonl").write_text(json.dumps(done) + "\n" + '{"set": "qa", "lay')  # and a line cut by the kill
    inputs = {"model": (perturbed_model_dir, "hf_model"), "base_model": (tiny_model_dir, "hf_model"),
              "benchmarks": (benchmarks_dir, "benchmark_data")}
    code, _ = evaluate(work, "resumed", inputs, {"sets": ["qa"], "weight_delta": False}, out=out)
    assert code == 0
    b = block_of(out)
    kept = [r for r in b["cka"] if r["layer"] == 1]
    assert kept == [done]  # not recomputed
    fresh = {r["layer"]: r["linear"] for r in compared["cka"] if r["set"] == "qa"}
    assert [r["linear"] for r in b["cka"] if r["layer"] != 1] == [fresh[0], fresh[2]]
    assert len((rows / "cka.jsonl").read_text().splitlines()) == LAYERS  # the torn line dropped


def test_bad_input_is_refused_before_anything_is_written(tiny_model_dir, benchmarks_dir, tmp_path):
    no_rows = tmp_path / "empty-benchmarks"
    no_rows.mkdir()
    inputs = {"model": (tiny_model_dir, "hf_model"), "base_model": (tiny_model_dir, "hf_model"),
              "benchmarks": (no_rows, "benchmark_data")}
    code, out = evaluate(tmp_path, "missing-rows", inputs)
    assert code == 2 and not out.exists()
    code, out = evaluate(tmp_path, "bad-params", inputs, {"probe_questions": 5, "probe_folds": 4})
    assert code == 2 and not out.exists()
    deeper = tmp_path / "deeper-model"
    shutil.copytree(tiny_model_dir, deeper)
    cfg = json.loads((deeper / "config.json").read_text())
    (deeper / "config.json").write_text(json.dumps({**cfg, "num_hidden_layers": 3}))
    inputs = {"model": (deeper, "hf_model"), "base_model": (tiny_model_dir, "hf_model"),
              "benchmarks": (benchmarks_dir, "benchmark_data")}
    code, out = evaluate(tmp_path, "other-shape", inputs)
    assert code == 2 and not out.exists()


def test_weights_of_nan_free_rows_are_json_numbers(compared):
    for r in compared["weights"] + compared["cka"]:
        for v in r.values():
            assert not (isinstance(v, float) and math.isnan(v))
