"""Parameters of the GRPO trainer. Defaults from the methods reference §4: full fine-tuning, group 8, clip 0.2,
no KL in the main run (a 0.001 low_var_kl ablation is one switch), lr 1e-6 constant with a short warm-up,
temperature 1.0, token-mean loss, zero-variance groups dropped.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from stages.core.common_params import Lora, Optim, Precision, Sampling
from stages.core.model_base import StrictModel


def _optim() -> Optim:
    return Optim(lr=1e-6, schedule="constant", warmup_ratio=0.01, weight_decay=0.01)


def _sampling() -> Sampling:
    return Sampling(temperature=1.0, top_p=1.0, max_new_tokens=2048)


class GRPOParams(StrictModel):
    group_size: int = Field(8, ge=2, le=1024, description="Responses sampled per prompt (GRPO's G); 1 is invalid.")
    prompts_per_step: int = Field(64, ge=1, le=65536, description="Prompts per rollout batch (verl train_batch_size).")
    mini_batch_size: int = Field(32, ge=1, le=65536, description="Prompts per policy update (verl ppo_mini_batch).")
    micro_batch_size_per_gpu: int = Field(4, ge=1, le=4096, description="Sequences per forward/backward per GPU.")
    ppo_epochs: int = Field(1, ge=1, le=16, description="Update passes over each rollout batch.")
    epochs: float = Field(1.0, gt=0, le=1000, description="Passes over the prompt set.")
    max_steps: int | None = Field(None, ge=1, description="Stop after this many rollout steps (overrides epochs).")
    max_prompt_length: int = Field(1024, ge=16, le=131072, description="Longest prompt in tokens.")
    sampling: Sampling = Field(default_factory=_sampling)
    clip_ratio: float = Field(0.2, gt=0, le=1.0, description="PPO clip epsilon (low side).")
    clip_ratio_high: float | None = Field(None, gt=0, le=1.0, description="Clip-higher epsilon (DAPO 0.28).")
    kl_coef: float = Field(0.0, ge=0.0, le=10.0, description="KL-to-reference coefficient; 0 = no reference model.")
    kl_type: Literal["low_var_kl", "kl", "mse"] = Field("low_var_kl", description="KL estimator.")
    entropy_coef: float = Field(0.0, ge=0.0, le=1.0, description="Entropy bonus.")
    loss_agg: Literal["token-mean", "seq-mean-token-mean", "seq-mean-token-sum"] = Field(
        "token-mean", description="Loss aggregation; token-mean avoids length bias."
    )
    drop_zero_variance_groups: bool = Field(True, description="Drop groups whose rewards are all equal (counted).")
    optim: Optim = Field(default_factory=_optim)
    lora: Lora = Field(default_factory=Lora)
    precision: Precision = Field(default_factory=Precision)
    save_every_steps: int = Field(20, ge=1, le=1_000_000, description="Checkpoint cadence (verl writes none by default).")
    log_rollouts_every_steps: int = Field(10, ge=1, description="Write sampled rollouts every this many steps.")
    rollout_gpu_memory_utilization: float = Field(0.5, gt=0.05, le=0.95, description="vLLM memory share (verl).")
    rollout_tensor_parallel: int = Field(1, ge=1, le=16, description="vLLM tensor parallel size (verl).")

    @model_validator(mode="after")
    def _batches(self) -> "GRPOParams":
        if self.mini_batch_size > self.prompts_per_step:
            raise ValueError("`mini_batch_size` cannot exceed `prompts_per_step`")
        if self.prompts_per_step % self.mini_batch_size:
            raise ValueError("`prompts_per_step` must be a multiple of `mini_batch_size`")
        return self
