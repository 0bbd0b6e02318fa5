"""The verl overrides of one GRPO run, as plain data: params + resources + paths in, ``key=value`` strings out.

Why plain data: the overrides are the whole contract with verl, so they are built in one pure function that tests
compose against verl's real ``ppo_trainer`` config for every GPU/node shape, that the manifest records verbatim,
and that needs neither verl nor a GPU to compute. Every key here is one verl 0.9.1 reads (see the verl reference
§3): the reward function goes to ``reward.custom_reward_function.*`` (the old top-level keys are silently
ignored), checkpoints are on (verl writes none by default), ``resume_mode=auto`` picks up after a requeue, and
validation is off unless a validation set is given (verl validates before training by default).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from stages.grpo_trainer.params import GRPOParams

NO_VAL_SAMPLES = 8  # verl always builds a validation set; without one we give it a few training rows it never uses


@dataclass(frozen=True)
class VerlJob:
    """Everything besides the params that decides the overrides: where things are and what the job holds."""

    model_path: str
    train_files: str
    output_dir: str  # the run folder; verl's checkpoints, rollouts and logs go below it
    reward_path: str
    nnodes: int = 1
    gpus_per_node: int = 1
    cpus: int | None = None  # Slurm CPUs on the node; given to Ray only when verl starts Ray itself (one node)
    val_files: str | None = None
    experiment_name: str = "grpo"
    project_name: str = "forgetting-llms"
    seed: int = 0
    thinking: bool = False
    wandb: bool = False
    attn_implementation: str = "flash_attention_2"
    total_steps: int = 1
    total_epochs: int = 1
    env_vars: dict[str, str] = field(default_factory=dict)  # for Ray workers (wandb, HF offline)

    @property
    def checkpoint_dir(self) -> str:
        return f"{self.output_dir}/checkpoints"

    @property
    def rollout_dir(self) -> str:
        return f"{self.output_dir}/verl/rollouts"


def hydra_value(value: Any) -> str:
    """Render a Python value in Hydra's override grammar (strings always quoted, so paths cannot be misparsed)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(hydra_value(v) for v in value) + "]"
    text = str(value).replace("\\", "\\\\").replace("'", "\\'")
    return f"'{text}'"


def total_steps(num_prompts: int, params: GRPOParams) -> tuple[int, int]:
    """(rollout steps, epochs to allow) for a prompt set: verl drops the last partial batch of every epoch."""
    per_epoch = num_prompts // params.prompts_per_step
    if params.max_steps is not None:
        steps = params.max_steps
    else:
        steps = max(1, math.floor(params.epochs * per_epoch))
    epochs = math.ceil(steps / per_epoch) if per_epoch else 1
    # one spare epoch: verl may drop overlong prompts, which shortens its epochs; total_training_steps still binds
    return steps, epochs + 1


def build_overrides(params: GRPOParams, job: VerlJob) -> list[str]:
    """The full, ordered list of ``key=value`` overrides for ``python -m verl.trainer.main_ppo``."""
    p = params
    ov: dict[str, Any] = {}
    add: dict[str, Any] = {}  # keys verl's config does not declare (Hydra's `+key=value`)

    ov["algorithm.adv_estimator"] = "grpo"
    ov["algorithm.use_kl_in_reward"] = False
    ov["algorithm.norm_adv_by_std_in_grpo"] = p.normalize_adv_by_std
    ov["algorithm.filter_groups.enable"] = p.drop_zero_variance_groups
    if p.drop_zero_variance_groups:
        ov["algorithm.filter_groups.metric"] = "reward"

    has_val = job.val_files is not None
    ov["data.train_files"] = job.train_files
    ov["data.val_files"] = job.val_files if has_val else job.train_files
    ov["data.val_max_samples"] = -1 if has_val else NO_VAL_SAMPLES
    ov["data.train_batch_size"] = p.prompts_per_step
    ov["data.max_prompt_length"] = p.max_prompt_length
    ov["data.max_response_length"] = p.sampling.max_new_tokens
    ov["data.filter_overlong_prompts"] = True
    ov["data.truncation"] = "error"
    ov["data.shuffle"] = True
    ov["data.seed"] = job.seed
    add["data.apply_chat_template_kwargs.enable_thinking"] = job.thinking

    model = "actor_rollout_ref.model"
    ov[f"{model}.path"] = job.model_path
    ov[f"{model}.use_remove_padding"] = True
    ov[f"{model}.enable_gradient_checkpointing"] = p.precision.activation_checkpointing
    add[f"{model}.override_config.attn_implementation"] = job.attn_implementation
    if p.lora.rank > 0:
        ov[f"{model}.lora_rank"] = p.lora.rank
        ov[f"{model}.lora_alpha"] = p.lora.alpha
        ov[f"{model}.target_modules"] = p.lora.target_modules

    actor = "actor_rollout_ref.actor"
    ov[f"{actor}.optim.lr"] = p.optim.lr
    ov[f"{actor}.optim.lr_warmup_steps_ratio"] = p.optim.warmup_ratio
    ov[f"{actor}.optim.lr_scheduler_type"] = p.optim.schedule
    ov[f"{actor}.optim.weight_decay"] = p.optim.weight_decay
    ov[f"{actor}.optim.betas"] = [p.optim.beta1, p.optim.beta2]
    ov[f"{actor}.optim.clip_grad"] = p.optim.grad_clip
    ov[f"{actor}.grad_clip"] = p.optim.grad_clip
    ov[f"{actor}.ppo_mini_batch_size"] = p.mini_batch_size
    ov[f"{actor}.ppo_micro_batch_size_per_gpu"] = p.micro_batch_size_per_gpu
    ov[f"{actor}.use_dynamic_bsz"] = False
    ov[f"{actor}.ppo_epochs"] = p.ppo_epochs
    ov[f"{actor}.clip_ratio"] = p.clip_ratio
    ov[f"{actor}.clip_ratio_low"] = p.clip_ratio
    ov[f"{actor}.clip_ratio_high"] = p.clip_ratio_high if p.clip_ratio_high is not None else p.clip_ratio
    ov[f"{actor}.loss_agg_mode"] = p.loss_agg
    ov[f"{actor}.entropy_coeff"] = p.entropy_coef
    ov[f"{actor}.calculate_entropy"] = True
    ov[f"{actor}.use_kl_loss"] = p.kl_enabled
    ov[f"{actor}.kl_loss_coef"] = p.kl_coef if p.kl_enabled else 0.001
    ov[f"{actor}.kl_loss_type"] = p.kl_type
    ov[f"{actor}.data_loader_seed"] = job.seed
    ov[f"{actor}.fsdp_config.param_offload"] = p.verl.param_offload
    ov[f"{actor}.fsdp_config.optimizer_offload"] = p.verl.optimizer_offload

    ref = "actor_rollout_ref.ref"
    ov[f"{ref}.log_prob_micro_batch_size_per_gpu"] = p.verl.log_prob_micro_batch_size_per_gpu
    ov[f"{ref}.fsdp_config.param_offload"] = p.verl.param_offload

    rollout = "actor_rollout_ref.rollout"
    ov[f"{rollout}.name"] = "vllm"
    ov[f"{rollout}.n"] = p.group_size
    ov[f"{rollout}.temperature"] = p.sampling.temperature
    ov[f"{rollout}.top_p"] = p.sampling.top_p
    ov[f"{rollout}.top_k"] = p.sampling.top_k
    ov[f"{rollout}.tensor_model_parallel_size"] = p.verl.rollout_tensor_parallel
    ov[f"{rollout}.gpu_memory_utilization"] = p.verl.rollout_gpu_memory_utilization
    ov[f"{rollout}.log_prob_micro_batch_size_per_gpu"] = p.verl.log_prob_micro_batch_size_per_gpu
    ov[f"{rollout}.seed"] = job.seed

    ov["reward.custom_reward_function.path"] = job.reward_path
    ov["reward.custom_reward_function.name"] = p.reward_function.name

    ov["trainer.nnodes"] = job.nnodes
    ov["trainer.n_gpus_per_node"] = job.gpus_per_node
    ov["trainer.total_epochs"] = job.total_epochs
    ov["trainer.total_training_steps"] = job.total_steps
    ov["trainer.save_freq"] = p.save_every_steps
    ov["trainer.max_actor_ckpt_to_keep"] = p.keep_checkpoints
    ov["trainer.resume_mode"] = "auto"
    ov["trainer.default_local_dir"] = job.checkpoint_dir
    ov["trainer.val_before_train"] = False
    ov["trainer.test_freq"] = p.val_every_steps if (has_val and p.val_every_steps > 0) else -1
    ov["trainer.logger"] = ["console", "file", *(["wandb"] if job.wandb else [])]
    ov["trainer.project_name"] = job.project_name
    ov["trainer.experiment_name"] = job.experiment_name
    ov["trainer.rollout_data_dir"] = job.rollout_dir

    # One node: verl starts Ray itself and must be told the CPUs Slurm gave us. Several: main_ppo attaches to the
    # cluster the launcher started, and Ray refuses resource arguments when attaching.
    ov["ray_kwargs.ray_init.num_cpus"] = job.cpus if job.nnodes == 1 else None
    for name, value in sorted(job.env_vars.items()):
        add[f"ray_kwargs.ray_init.runtime_env.env_vars.{name}"] = value

    out = [f"{k}={hydra_value(v)}" for k, v in ov.items()]
    out += [f"+{k}={hydra_value(v)}" for k, v in add.items()]
    return out + list(p.verl.extra_overrides)


def override_keys(overrides: list[str]) -> dict[str, str]:
    """``{key: raw value}`` of an override list (``+`` dropped), for tests and the manifest."""
    out = {}
    for item in overrides:
        key, _, value = item.partition("=")
        out[key.lstrip("+~")] = value
    return out
