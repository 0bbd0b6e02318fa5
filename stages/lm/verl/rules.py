"""What verl's PPO trainer cannot honour in the settings every PPO-family stage shares, in plain Python.

Why here: grpo-trainer and pi-distill both hand these settings to the same verl trainer (``stages.lm.verl.options``
and the shared ``optim``/``precision``/``lora`` blocks), and verl finds some of the problems only inside its workers
once Ray, vLLM and FSDP are up (a vLLM replica must fit in one node and the replicas must tile the GPUs:
``replica.py``), others never (an unsupported schedule falls back silently). Each stage adds its own batch rules.
"""

from __future__ import annotations

from typing import Any

from stages.lm.verl.overrides import malformed

VLLM_MAX_LORA_RANK = 512  # verl.workers.rollout.vllm_rollout.utils.get_vllm_max_lora_rank


def setting_problems(p: Any, gpus_per_node: int) -> list[str]:
    """Problems with ``p.verl``, ``p.optim``, ``p.precision`` and ``p.lora`` on nodes of ``gpus_per_node`` GPUs."""
    problems = []
    tp = p.verl.rollout_tensor_parallel
    if tp > gpus_per_node or gpus_per_node % tp:
        problems.append(f"verl.rollout_tensor_parallel {tp} must divide gpus_per_node {gpus_per_node} (a vLLM "
                        "replica lives on one node, and the replicas must tile every GPU)")
    if p.optim.schedule not in ("constant", "cosine"):
        problems.append(f"optim.schedule {p.optim.schedule!r}: verl's FSDP optimizer supports constant or cosine")
    if not p.precision.bf16:
        problems.append("precision.bf16=false: verl trains with bf16 mixed precision only (use engine native for fp32)")
    if p.lora.rank > VLLM_MAX_LORA_RANK:
        problems.append(f"lora.rank {p.lora.rank}: vLLM serves LoRA ranks up to {VLLM_MAX_LORA_RANK}")
    if p.lora.rank > 0 and p.lora.dropout > 0:
        problems.append("lora.dropout > 0: verl's FSDP LoRA has no dropout setting; use 0")
    return problems + malformed(p.verl.extra_overrides)
