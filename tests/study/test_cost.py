"""The cost model (``stages.study.costing``): its measured rates are the bench files' figures, its estimate of the
bench's own workload sits beside the measured wall time, and ``--budget`` refuses a study that exceeds it.

The run set set beside a measurement is the native engine bench's SFT workload at the Qwen3-1.7B shape on H100s
(``bench/results/native_engine*.json``: about 65k tokens a step of GSM8K-length rows, twelve timed steps): the cost
model's training estimate for those tokens (compiled engine, no checkpointing, the file's GPU count) against the
median step time the file records times its timed steps; and the transformers ``generate`` estimate against
``bench/results/hf_generate.json``'s two batch sizes.
"""

from __future__ import annotations

import json
import statistics

from click.testing import CliRunner

from stages.study.cli import main
from stages.study.costing import throughput
from stages.study.costing.cards import CARDS
from stages.study.costing.shapes import SHAPES
from tests.study.conftest import REPO, counter_run, write_study

BENCH = REPO / "bench" / "results"
H100 = CARDS["H100-80GB"]


def _doc(name: str) -> dict:
    return json.loads((BENCH / name).read_text())


def test_rates_are_the_bench_figures():
    one = _doc("native_engine.json")["results"][0]
    assert "compiled" in one["loop"] and "8192" in one["loop"]
    assert abs(throughput.NATIVE_MFU_COMPILED - one["mfu"]) < 0.001
    two = _doc("native_engine_2gpu_every_side_by_side.json")["results"][0]
    assert two["world_size"] == 2
    assert abs(throughput.NATIVE_MULTI_GPU_SCALING - two["mfu"] / throughput.NATIVE_MFU_COMPILED) < 0.01
    rows = {r["batch"]: r for r in _doc("hf_generate.json")["results"]}
    for batch, steps in throughput.HF_STEPS_PER_S.items():
        assert abs(rows[batch]["decode_steps_per_s"] - steps) < 0.1, batch


def test_training_estimate_beside_the_measured_bench_runs(capsys):
    compared = []
    for path in sorted(BENCH.glob("native_engine*.json")):
        doc = json.loads(path.read_text())
        for row in doc["results"]:
            if not row["loop"].startswith("native") or "compiled" not in row["loop"]:
                continue
            world = int(row.get("world_size") or 1)
            measured = statistics.median(row["step_times_s"]) * row["timed_steps"]  # steady steps, not compiles
            tokens = row["tokens_per_step"] * row["timed_steps"]
            est = throughput.train_seconds(tokens, SHAPES["1.7B"], H100, world, "native", doc["mean_len"],
                                           compiled=True, checkpointing=False)
            compared.append((path.name, world, est, measured))
    with capsys.disabled():
        for name, world, est, measured in compared:
            print(f"\n  {name}: {world} GPU(s): estimate {est:.1f} s, measured {measured:.1f} s")
    assert len(compared) >= 4 and {w for _, w, _, _ in compared} == {1, 2}
    for name, _, est, measured in compared:
        assert 0.75 <= est / measured <= 1.25, (name, est, measured)


def test_verl_training_estimate_beside_the_measured_verl_sft_run():
    """verl's rate is the one its SFT run reached on the GPU box; the native engine's rate, measured in the same run
    on the same batch, stays within the estimate's tolerance too (its constant comes from the other bench)."""
    doc = _doc("verl_sft_gpu.json")
    assert doc["first_step_loss"]["relative_difference"] < 1e-3  # the same batch for both engines
    for engine in ("verl", "native"):
        steps = doc["comparison"][engine]["steps"][1:]  # step 1 carries the warm-up
        measured = statistics.median(s["seconds"] for s in steps)
        tokens = steps[0]["tokens"]
        est = throughput.train_seconds(tokens, SHAPES["1.7B"], H100, 1, engine, tokens / 32, checkpointing=True)
        assert 0.8 <= est / measured <= 1.25, (engine, est, measured)


def test_generation_estimate_beside_the_measured_hf_generate():
    doc = _doc("hf_generate.json")
    for row in doc["results"]:
        new = row["generated_tokens"] / row["batch"]
        est = throughput.hf_decode_seconds(row["batch"], 120, new, SHAPES["1.7B"], H100, row["batch"])
        assert 0.8 <= est / row["seconds"] <= 1.25, (row["batch"], est, row["seconds"])


def test_the_evaluators_tier_tasks_all_have_a_cost():
    from stages.evaluator.lmeval.catalog import tier_tasks
    from stages.study.costing.evaluation import TIERS

    for tier in ("A", "B", "C"):
        assert set(tier_tasks([tier])) <= set(TIERS[tier]), tier


def test_plan_prints_the_estimate_beside_the_ceiling(tmp_path, monkeypatch):
    from stages.study.costing.cost import estimate_plan
    from stages.study.definition import load_study
    from stages.study.planner import plan_study

    monkeypatch.setenv("SCRATCH", str(tmp_path / "scratch"))
    res = CliRunner().invoke(main, ["plan", "phase1", "--no-check-paths", "--root", str(tmp_path / "runs")])
    assert res.exit_code == 0, res.output
    plan = plan_study(load_study("phase1"), str(tmp_path / "runs"), "local", check_paths=False)
    costs = estimate_plan(plan, H100)
    total = next(line for line in res.output.splitlines() if line.strip().startswith("total"))
    assert f"{sum(c.gpu_hours for c in costs):.1f}" in total and f"{sum(c.ceiling for c in costs):.1f}" in total
    for stage in ("collector", "sft-trainer", "spin", "grpo-trainer", "pi-distill", "evaluator"):
        assert any(line.strip().startswith(stage) for line in res.output.splitlines()), stage
    assert "peak GPU memory per trainer run" in res.output and "H100-80GB" in res.output


def test_budget_refuses_a_plan_and_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("SCRATCH", str(tmp_path / "scratch"))
    root = tmp_path / "runs"
    res = CliRunner().invoke(main, ["plan", "phase1", "--no-check-paths", "--root", str(root), "--budget", "10"])
    assert res.exit_code == 2, res.output
    assert "exceeds --budget 10 GPU-hours" in res.output and "nothing written" in res.output
    assert not root.exists()
    ok = CliRunner().invoke(main, ["plan", "phase1", "--no-check-paths", "--root", str(root), "--budget", "100000"])
    assert ok.exit_code == 0, ok.output


def test_budget_refuses_a_check(tmp_path, counter_env):
    """Two extra runs of one GPU and an hour each: no estimate of their own, so they count at their time limit."""
    runs = [counter_run(rid, steps=1) for rid in ("a", "b")]
    for r in runs:
        r["resources"].update(gpus_per_node=1, time_minutes=60)
    study = write_study(tmp_path, "costly", runs)
    root = tmp_path / "runs"
    over = CliRunner().invoke(main, ["check", str(study), "--root", str(root), "--budget", "1.5"])
    assert over.exit_code == 2, over.output
    assert "2.0 GPU-hours, exceeds --budget 1.5" in over.output
    within = CliRunner().invoke(main, ["check", str(study), "--root", str(root), "--budget", "2"])
    assert within.exit_code == 0, within.output
    assert not root.exists()


def test_the_representations_suite_costs_its_forward_passes_and_its_weight_pass():
    from types import SimpleNamespace

    from stages.study.costing import evaluation

    p = SimpleNamespace(tasks=[], tiers=[])
    rep = evaluation.work(p, ["representations"], "math", None)
    assert rep.weight_pass and rep.forward_tokens == 2 * evaluation.REPRESENTATION_TOKENS_PER_MODEL
    assert not evaluation.work(p, [], "math", None).weight_pass
