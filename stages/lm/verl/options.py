"""The ``verl`` block of a PPO-family stage's params (grpo-trainer, pi-distill): the settings only the verl engine has.

Why one model: the knobs of verl's vLLM rollouts, log-prob passes, FSDP offload, attention kernel, Ray port and raw
overrides mean the same in every stage that runs verl's PPO trainer, so a study sets them alike and the composition
tests check them once; a stage adds only its own (pi-distill: the update's micro-batch, which GRPO keeps top-level).
The manifest is the interface: bounds and descriptions are part of it.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from stages.core.model_base import StrictModel


class VerlOptions(StrictModel):
    """Settings only the verl engine has (vLLM rollouts, FSDP offload, Ray)."""

    rollout_gpu_memory_utilization: float = Field(0.5, gt=0.05, le=0.95, description="vLLM's share of GPU memory.")
    rollout_tensor_parallel: int = Field(1, ge=1, le=16, description="vLLM tensor parallel size per rollout replica.")
    log_prob_micro_batch_size_per_gpu: int = Field(
        8, ge=1, le=4096, description="Sequences per forward when recomputing old/reference log-probs."
    )
    param_offload: bool = Field(False, description="Offload FSDP parameters to CPU (actor and reference).")
    optimizer_offload: bool = Field(False, description="Offload the optimizer state to CPU.")
    attn_implementation: Literal["auto", "flash_attention_2", "sdpa"] = Field(
        "auto", description="Training attention kernel; auto = flash_attention_2 when flash-attn is installed."
    )
    ray_port: int = Field(6379, ge=1024, le=65535, description="Ray head port for multi-node runs.")
    extra_overrides: list[str] = Field(
        default_factory=list,
        description="Raw verl Hydra overrides appended last (`key=value`); composed against verl's config before "
        "the run, so an unknown key is an error. Recorded in the manifest.",
    )
