"""The native engine with the vllm generation backend is not built (vLLM would need the updated weights between
steps; ON-RL at scale samples with vLLM on verl): a manifest that asks for it fails loudly, naming the unbuilt path,
and writes no model."""

from __future__ import annotations

from tests.grpo_trainer.helpers import manifest, record, run_stage
from tests.grpo_trainer.tiny_task import task_prompts


def test_native_engine_with_vllm_backend_fails_as_not_implemented(tmp_path, tiny_model_dir):
    prompts = task_prompts(tmp_path / "prompts.parquet")
    params = {"group_size": 4, "prompts_per_step": 4, "mini_batch_size": 4, "max_steps": 2, "max_prompt_length": 64,
              "sampling": {"max_new_tokens": 8}, "drop_zero_variance_groups": False,
              "native": {"generation_backend": "vllm", "micro_batch_tokens": 2048}}
    res = run_stage(manifest(tmp_path, tiny_model_dir, prompts, params=params), timeout=900)
    rec = record(tmp_path / "out")
    assert res.returncode != 0 and rec["status"]["state"] == "failed"
    assert rec["status"]["message"].startswith("not implemented yet: the native engine with the vllm generation")
    assert not (tmp_path / "out" / "model").exists()
