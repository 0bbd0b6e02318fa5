"""Bad input fails before any GPU time: a clear message, exit code 2, nothing written under output_dir; the verl
engine without vLLM fails with a message naming what is missing instead of pretending."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from stages.grpo_trainer.cli import main as grpo_cli
from tests.grpo_trainer.helpers import arithmetic_rows, manifest, record, run_stage, write_parquet


@pytest.fixture
def world(tmp_path, tiny_model_dir):
    prompts = write_parquet(tmp_path / "prompts.parquet", arithmetic_rows(16))
    return tmp_path, tiny_model_dir, prompts


def check(m, *needles: str):
    """`validate` and a real run both refuse with exit 2 and the message; nothing is written."""
    out_dir = json.loads(m.read_text())["spec"]["output_dir"]
    for args in (["validate", "--manifest", str(m)], ["--manifest", str(m)]):
        res = CliRunner().invoke(grpo_cli, args)
        assert res.exit_code == 2, res.output
        for needle in needles:
            assert needle in res.output, res.output
    from pathlib import Path

    assert not Path(out_dir).exists()


def test_prompts_in_the_wrong_schema(world):
    tmp, model, _ = world
    sft = write_parquet(tmp / "sft.parquet", [{"messages": [{"role": "user", "content": "hi"},
                                                            {"role": "assistant", "content": "yo"}]}])
    check(manifest(tmp, model, sft), "missing column(s) data_source, prompt, reward_model", "SFT data")


def test_prompt_as_plain_string(world):
    tmp, model, _ = world
    rows = [dict(r, prompt=r["prompt"][0]["content"]) for r in arithmetic_rows(16)]
    bad = write_parquet(tmp / "bad.parquet", rows)
    check(manifest(tmp, model, bad), "row 0", "plain string")


def test_missing_ground_truth(world):
    tmp, model, _ = world
    rows = [dict(r, reward_model={"style": "rule"}) for r in arithmetic_rows(16)]
    check(manifest(tmp, model, write_parquet(tmp / "nogt.parquet", rows)), "ground_truth")


def test_group_size_one(world):
    tmp, model, prompts = world
    check(manifest(tmp, model, prompts, params={"group_size": 1}), "group_size", "advantage zero")


def test_reward_function_path_that_does_not_exist(world):
    tmp, model, prompts = world
    params = {"reward_function": {"path": str(tmp / "no_such_reward.py")}}
    check(manifest(tmp, model, prompts, params=params), "no_such_reward.py does not exist")


def test_too_few_prompts_for_one_step(world):
    tmp, model, prompts = world
    check(manifest(tmp, model, prompts, params={"prompts_per_step": 32, "mini_batch_size": 32}),
          "fewer than prompts_per_step")


def test_validation_cadence_without_validation_set(world):
    tmp, model, prompts = world
    check(manifest(tmp, model, prompts, params={"val_every_steps": 5}), "val_prompts")


def test_native_refuses_what_it_does_not_implement(world):
    tmp, model, prompts = world
    params = {"kl_coef": 0.01, "kl_type": "mse", "entropy_coef": 0.01, "prompts_per_step": 8, "mini_batch_size": 8}
    check(manifest(tmp, model, prompts, params=params, engine="native"), "low_var_kl", "entropy")


def test_verl_batch_that_does_not_split_over_the_gpus(world):
    pytest.importorskip("verl")
    tmp, model, prompts = world
    params = {"prompts_per_step": 16, "mini_batch_size": 8, "group_size": 2}
    check(manifest(tmp, model, prompts, engine="verl", params=params, resources={"gpus_per_node": 3}),
          "divisible by the GPU count 1 node(s) x 3 = 3")


def test_verl_without_gpus(world):
    tmp, model, prompts = world
    params = {"prompts_per_step": 16, "mini_batch_size": 8}
    check(manifest(tmp, model, prompts, engine="verl", params=params), "needs GPUs")


def test_verl_unknown_extra_override(world):
    pytest.importorskip("verl")
    tmp, model, prompts = world
    params = {"prompts_per_step": 16, "mini_batch_size": 8, "verl": {"extra_overrides": ["trainer.no_such=1"]}}
    check(manifest(tmp, model, prompts, engine="verl", params=params, resources={"gpus_per_node": 2}),
          "verl rejected the overrides", "no_such")


def test_verl_without_vllm_fails_naming_it(world):
    """A valid verl manifest on a machine without vLLM: the run fails at once with what to install."""
    pytest.importorskip("verl")
    import importlib.util

    if importlib.util.find_spec("vllm") is not None:
        pytest.skip("vllm is installed here")
    tmp, model, prompts = world
    m = manifest(tmp, model, prompts, engine="verl", params={"prompts_per_step": 16, "mini_batch_size": 8},
                 resources={"gpus_per_node": 2})
    res = run_stage(m, timeout=300)
    assert res.returncode == 1, res.stderr[-2000:]
    rec = record(tmp / "out")
    assert rec["status"]["state"] == "failed"
    assert "vllm" in rec["status"]["message"] and "engine verl cannot run here" in rec["status"]["message"]
    assert not (tmp / "out" / "model").exists() and not (tmp / "out" / "verl").exists()
