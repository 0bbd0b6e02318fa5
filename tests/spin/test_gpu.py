"""SPIN on one GPU: bf16 generation and bf16-mixed training (FSDP2 on one device, the engine's GPU default),
activation checkpointing, two iterations, stops mid-training and between iterations; the optimizer-state offload
switch trains as without it; and one iteration whose samples come from a vLLM server when vLLM is installed.

On a GPU the reductions of a backward pass are not bitwise reproducible (atomic adds), and a tiny difference in the
weights changes the next iteration's samples, so a resumed run is checked against the plain one where it must
agree exactly (the first iteration's samples, drawn before any update) and closely where it can (the first
iteration's reference log-probs and losses); the CPU test checks exact resume end to end. These tests generate
with ``hf``: a vLLM server batches concurrent requests as they arrive, so its bf16 samples need not repeat bit for
bit; the vLLM test checks the route, not repeatability.
"""

from __future__ import annotations

import math

import pytest
import torch

from tests.spin.conftest import jsonl, record_of, run_inproc, weights, write_manifest

GPU = {"precision": {"bf16": True, "activation_checkpointing": True}, "generation_backend": "hf",
       "optim": {"lr": 1e-3, "schedule": "constant", "warmup_ratio": 0.0}}


@pytest.mark.gpu
def test_two_iterations_on_one_gpu_resume_after_stops(tmp_path, tiny_model_dir, spin_prompts):
    plain = write_manifest(tmp_path, tiny_model_dir, spin_prompts, out="plain", name="plain.json", **GPU)
    res = run_inproc(plain)
    assert res.exit_code == 0, res.output
    rec = record_of(tmp_path / "plain")
    assert rec["provenance"]["engine_config"]["train_config"]["precision"] == "auto"
    steps = [r for r in jsonl(tmp_path / "plain" / "metrics.jsonl") if r["phase"] == "train"]
    for t in (0, 1):
        it = [r for r in steps if r["iteration"] == t]
        assert it[0]["loss"] == pytest.approx(math.log(2), abs=2e-2)  # bf16 compute: policy ~ reference
        assert it[-1]["reward_margin"] > it[0]["reward_margin"]

    cut = write_manifest(tmp_path, tiny_model_dir, spin_prompts, out="cut", name="cut.json", **GPU)
    env = {"FLLM_SPIN_SIGNAL_AT": "train:0:1,iteration:0,train:1:2"}
    codes = [run_inproc(cut, env=env).exit_code for _ in range(4)]
    assert codes == [75, 75, 75, 0], codes
    cut_out, plain_out = tmp_path / "cut", tmp_path / "plain"
    assert (cut_out / "pairs" / "iter-0.jsonl").read_bytes() == (plain_out / "pairs" / "iter-0.jsonl").read_bytes()
    ref_a, ref_b = (jsonl(o / "pairs" / "iter-0.reference.jsonl") for o in (cut_out, plain_out))
    for x, y in zip(ref_a, ref_b, strict=True):
        assert x["ref_logp_chosen"] == pytest.approx(y["ref_logp_chosen"], rel=1e-3)
    loss_a, loss_b = ([r["loss"] for r in jsonl(o / "metrics.jsonl") if r["iteration"] == 0 and r["phase"] == "train"]
                      for o in (cut_out, plain_out))
    assert loss_a == pytest.approx(loss_b, rel=2e-2, abs=2e-3)
    assert all(torch.isfinite(w.float()).all() for w in weights(cut_out / "model").values())


def _iteration_zero_losses(out):
    return [r["loss"] for r in jsonl(out / "metrics.jsonl") if r["iteration"] == 0 and r["phase"] == "train"]


@pytest.mark.gpu
def test_optimizer_offload_trains_as_without_it(tmp_path, tiny_model_dir, spin_prompts):
    outs = []
    for offload in (False, True):
        name = f"offload-{offload}"
        m = write_manifest(tmp_path, tiny_model_dir, spin_prompts, out=name, name=f"{name}.json", iterations=1,
                           native={"optimizer_offload": offload}, **GPU)
        res = run_inproc(m)
        assert res.exit_code == 0, res.output
        outs.append(tmp_path / name)
    assert record_of(outs[1])["provenance"]["engine_config"]["train_config"]["optimizer_offload"] is True
    assert (outs[0] / "pairs" / "iter-0.jsonl").read_bytes() == (outs[1] / "pairs" / "iter-0.jsonl").read_bytes()
    assert _iteration_zero_losses(outs[1]) == pytest.approx(_iteration_zero_losses(outs[0]), rel=2e-2, abs=2e-3)


@pytest.mark.gpu
def test_one_iteration_with_a_vllm_server_on_one_gpu(tmp_path, tiny_model_dir, spin_prompts):
    from stages.lm.launch.vllm_server import find_vllm_python

    if find_vllm_python() is None:
        pytest.skip("no Python with vllm here (install vllm, or set FLLM_VLLM_PYTHON)")
    m = write_manifest(tmp_path, tiny_model_dir, spin_prompts, iterations=1,
                       **{**GPU, "generation_backend": "auto", "vllm": {"gpu_memory_utilization": 0.3}})
    res = run_inproc(m)
    assert res.exit_code == 0, res.output
    out = tmp_path / "out"
    engine = record_of(out)["provenance"]["engine_config"]
    assert engine["generation_backend"] == "vllm" and engine["vllm_server"]["enforce_eager"] is False
    assert '"POST /v1/completions HTTP/1.1" 200' in (out / "logs" / "vllm-iter0-attempt1.log").read_text()
    losses = _iteration_zero_losses(out)
    assert losses[0] == pytest.approx(math.log(2), abs=2e-2) and all(math.isfinite(x) for x in losses)
