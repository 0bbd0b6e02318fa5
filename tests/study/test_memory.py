"""The memory model (``stages.study.costing.memory``) against what was measured, and its verdicts on the shipped
studies.

The measured peaks are read from ``bench/results/native_engine*.json`` (the native engine at the Qwen3-1.7B shape on
an H100: one GPU at 8k and 16k-token micro-batches, two GPUs in both gradient-sync modes), never copied here: a
rerun bench is checked as it stands. Shapes are checked against the bench's parameter count and the fixture model's
own weights (their safetensors header), the smallest-fit hints by applying them.
"""

from __future__ import annotations

import json
import re
import struct
from dataclasses import replace
from pathlib import Path

import pytest

from stages.study.costing.cards import CARDS
from stages.study.costing.memory import TrainSetup, estimate, smallest_fits, verdict
from stages.study.costing.shapes import SHAPES, shape_from_config, shape_for
from tests.study.conftest import REPO, SHIPPED

BENCH = REPO / "bench" / "results"


def measured_peaks() -> list[tuple[str, dict, dict]]:
    """(file, result row, args) of every native-engine row with a peak in the bench results."""
    out = []
    for path in sorted(BENCH.glob("native_engine*.json")):
        doc = json.loads(path.read_text())
        for row in doc["results"]:
            if row.get("peak_mem_gib") and row["loop"].startswith("native"):
                out.append((path.name, row, doc["args"]))
    return out


def bench_setup(row: dict, args: dict) -> TrainSetup:
    """The bench's configuration as the memory model sees it: compiled layers, no checkpointing, bf16 over fp32."""
    micro = int(re.search(r"packed (\d+) tokens", row["loop"]).group(1))
    sync = args.get("grad_sync") or "auto"
    return TrainSetup("sft-trainer", "native", SHAPES["1.7B"], int(row.get("world_size") or 1), micro_tokens=micro,
                      activation_checkpointing=False, compiled="compiled" in row["loop"], logprob_chunk=args["chunk"],
                      grad_sync=sync)


def test_within_15_percent_of_every_measured_peak():
    rows = measured_peaks()
    assert len(rows) >= 4, "the bench results hold one- and two-GPU peaks"
    seen = set()
    for name, row, args in rows:
        assert row["params"] == SHAPES["1.7B"].params, name  # the bench's model is the table's 1.7B shape
        x = bench_setup(row, args)
        got = estimate(x, CARDS["H100-80GB"]).peak_gib
        want = row["peak_mem_gib"]
        assert abs(got / want - 1) <= 0.15, f"{name}: model {got:.1f} GiB vs measured {want:.1f} GiB"
        seen.add((x.micro_tokens, x.world, x.grad_sync))
    assert len(seen) >= 3, seen  # different micro-batches and GPU counts, not one point repeated


def test_the_stages_own_settings_when_measured():
    """``bench/bench_memory.py``'s rows (eager layers, checkpointing, offload; written on the GPU machine): within 15%
    where they ran, and an out-of-memory error only where the model says the card is too small."""
    path = BENCH / "memory_model.json"
    if not path.is_file():
        pytest.skip("bench/results/memory_model.json not written yet (python3 bench/bench_memory.py on the GPU box)")
    h100 = CARDS["H100-80GB"]
    for row in json.loads(path.read_text())["rows"]:
        x = TrainSetup("sft-trainer", "native", SHAPES[row["size"]], 1, micro_tokens=row["micro"],
                       activation_checkpointing=row["checkpointing"], compiled=row["compiled"],
                       optimizer_offload=row["offload"])
        got = estimate(x, h100).peak_gib
        if row.get("oom"):
            assert not verdict(x, h100).fits, f"{row['config']} ran out of memory; the model says {got:.1f} fits"
        elif row.get("peak_mem_gib"):
            assert abs(got / row["peak_mem_gib"] - 1) <= 0.15, (row["config"], got, row["peak_mem_gib"])


def test_verl_sft_within_15_percent_of_its_measured_peak():
    """verl's FSDP state and head at the studies' setting (activation checkpointing on), against the allocator peak
    its SFT run logged on an H100 (``bench/results/verl_sft_gpu.json``: one micro-batch of the batch's tokens)."""
    doc = json.loads((BENCH / "verl_sft_gpu.json").read_text())
    steps = doc["comparison"]["verl"]["steps"]
    want = max(s["max_memory_allocated_gb"] for s in steps)  # torch's figure in GiB
    x = TrainSetup("sft-trainer", "verl", SHAPES["1.7B"], 1, micro_tokens=int(steps[0]["tokens"]),
                   activation_checkpointing=True)
    got = estimate(x, CARDS["H100-80GB"]).peak_gib
    assert abs(got / want - 1) <= 0.15, f"model {got:.1f} GiB vs measured {want:.1f} GiB"


def test_shapes_count_the_published_parameters():
    published = {"1.7B": 1.7e9, "4B": 4.0e9, "8B": 8.2e9, "14B": 14.8e9, "32B": 32.8e9, "70B": 70.6e9}
    for size, n in published.items():
        assert abs(SHAPES[size].params / n - 1) < 0.02, size


def _safetensors_numel(folder: Path) -> int:
    total = 0
    for f in folder.glob("*.safetensors"):
        with f.open("rb") as fh:
            (n,) = struct.unpack("<Q", fh.read(8))
            header = json.loads(fh.read(n))
        for key, t in header.items():
            if key != "__metadata__":
                size = 1
                for d in t["shape"]:
                    size *= d
                total += size
    return total


def test_config_json_wins_over_the_size_label():
    folder = REPO / ".fixtures" / "tiny-qwen3"
    shape = shape_for("4B", folder)
    assert shape.hidden == json.loads((folder / "config.json").read_text())["hidden_size"]
    assert shape.params == _safetensors_numel(folder)  # the tiny model's real weights
    assert shape_for("4B", folder / "absent") == SHAPES["4B"]
    assert shape_from_config(folder / "config.json") == shape


def test_14b_on_one_80gb_card_is_refused_and_the_hints_fit():
    x = TrainSetup("sft-trainer", "verl", SHAPES["14B"], 1, micro_tokens=8192,
                   offloads=("optimizer_offload", "param_offload"))
    h100 = CARDS["H100-80GB"]
    assert not verdict(x, h100).fits
    hints = smallest_fits(x, h100, per_node_max=4)
    gpus = next(h for h in hints if h.startswith("nodes:"))
    nodes, per = map(int, re.match(r"nodes: (\d+), gpus_per_node: (\d+)", gpus).groups())
    assert verdict(replace(x, nodes=nodes, gpus_per_node=per), h100).fits
    assert not verdict(replace(x, gpus_per_node=per // 2), h100).fits  # the smallest count that fits
    offload = next(h for h in hints if "optimizer_offload" in h)
    per = int(re.search(r"gpus_per_node: (\d+)", offload).group(1))
    assert verdict(replace(x, gpus_per_node=per, optimizer_offload=True), h100).fits


def test_sharding_and_offload_lower_the_peak_and_checkpointing_the_activations():
    base = TrainSetup("sft-trainer", "verl", SHAPES["8B"], 2)
    peaks = [estimate(replace(base, gpus_per_node=g), CARDS["H100-80GB"]).peak_gib for g in (2, 4, 8)]
    assert peaks == sorted(peaks, reverse=True)
    off = estimate(replace(base, optimizer_offload=True), CARDS["H100-80GB"])
    assert off.phases["forward/backward"].get("AdamW m, v") is None and "optimizer step" in off.phases
    no_ckpt = estimate(replace(base, activation_checkpointing=False), CARDS["H100-80GB"]).peak_gib
    assert no_ckpt > peaks[0]
    lora = estimate(replace(base, lora_rank=16), CARDS["H100-80GB"]).peak_gib
    assert lora < peaks[0] / 2


@pytest.mark.parametrize("name", [n for n in SHIPPED if n != "smoke"])
def test_shipped_studies_fit_80gb_cards_on_the_real_shapes(name, tmp_path, monkeypatch):
    """Planned with no model folders (the table's shapes): every GPU trainer run fits the local profile's H100,
    except the native pi-distill at 4B, which runs in one process and does not fit one 80 GB card (the study file
    says so; it fits an H200 or two GPUs on verl)."""
    from stages.study.costing.report import assess
    from stages.study.definition import load_study
    from stages.study.planner import plan_study
    from stages.study.profiles import load_profile

    monkeypatch.setenv("SCRATCH", str(tmp_path / "no-scratch"))
    plan = plan_study(load_study(name), str(tmp_path / "runs"), "local", check_paths=False)
    a = assess(plan, load_profile("local"))
    assert a.memory, "the phase studies have GPU trainer runs"
    for row in a.memory:
        if row.stage == "pi-distill" and row.verdict and row.verdict.estimate and not row.ok:
            assert any("H200" in h for h in row.fits_with), row.message()
            continue
        assert row.ok, row.message()
    assert not (tmp_path / "runs").exists()


def test_the_readme_table_is_the_models_output():
    from stages.study.costing.table import table

    text = table()
    readme = (REPO / "README.md").read_text()
    assert text in readme, "paste `python -m stages.study.costing.table` into the README"
    assert "| 14B | verl |" in text and "**no**" in text


def test_the_readme_phase_estimates_are_the_models_output(monkeypatch):
    from stages.study.costing.table import phases

    monkeypatch.delenv("SCRATCH", raising=False)
    assert phases() in (REPO / "README.md").read_text(), \
        "paste `python -m stages.study.costing.table --phases` into the README"
