"""The overrides of verl's ``ppo_trainer`` config that every PPO-family stage shares, as plain data.

Why plain data and one builder: grpo-trainer (GRPO) and pi-distill (π-Distill, OPSD) run the same verl trainer on
the same kind of allocation, so the keys for data, model, actor optimiser and batches, vLLM rollout, reward
function, checkpoints, loggers and Ray are built once here from the trainers' shared names (``PPOSettings``) and
where the job runs (``VerlJob``); a stage adds only its own keys (GRPO's dynamic sampling, π-Distill's trainer
switches) and renders the lot with ``stages.lm.verl.overrides.render``. The result needs neither verl nor a GPU to
compute, and tests compose it against verl's real config for every GPU/node shape. Every key is one verl 0.9.1
reads (verl reference §3): the reward function goes to ``reward.custom_reward_function.*`` (the old top-level keys
are silently ignored), checkpoints are on (verl writes none by default), ``resume_mode=auto`` picks up after a
requeue, and validation runs only on a real validation set (verl validates before training by default).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

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


@dataclass(frozen=True)
class PPOSettings:
    """A PPO-family run in the trainers' shared names (``sampling``, ``optim``, ``lora`` are the shared param
    blocks of ``stages.core.common_params``; ``verl`` holds the rollout, log-prob and offload options)."""

    group_size: int
    prompts_per_step: int
    mini_batch_size: int
    micro_batch_size_per_gpu: int
    ppo_epochs: int
    max_prompt_length: int
    sampling: Any
    optim: Any
    lora: Any
    activation_checkpointing: bool
    clip_low: float
    clip_high: float
    verl: Any
    save_every_steps: int
    keep_checkpoints: int
    loss_agg: str = "token-mean"
    entropy_coef: float = 0.0
    kl_coef: float = 0.0
    kl_type: str = "low_var_kl"
    normalize_adv_by_std: bool = True
    reward_name: str = "compute_score"
    val_every_steps: int = 0


def ppo_steps(num_prompts: int, prompts_per_step: int, epochs: float, max_steps: int | None) -> tuple[int, int]:
    """(rollout steps, epochs to allow) for a prompt set: verl drops the last partial batch of every epoch."""
    per_epoch = num_prompts // prompts_per_step
    steps = max_steps if max_steps is not None else max(1, math.floor(epochs * per_epoch))
    epochs_needed = math.ceil(steps / per_epoch) if per_epoch else 1
    # one spare epoch: verl may drop overlong prompts, which shortens its epochs; total_training_steps still binds
    return steps, epochs_needed + 1


def ppo_values(s: PPOSettings, job: VerlJob) -> tuple[dict[str, Any], dict[str, Any]]:
    """(keys verl's YAML declares, keys it lacks: Hydra's ``+key``) for ``main_ppo`` and the entries built on it."""
    ov: dict[str, Any] = {}
    add: dict[str, Any] = {}
    ov["algorithm.adv_estimator"] = "grpo"
    ov["algorithm.use_kl_in_reward"] = False
    ov["algorithm.norm_adv_by_std_in_grpo"] = s.normalize_adv_by_std

    has_val = job.val_files is not None
    ov["data.train_files"] = job.train_files
    ov["data.val_files"] = job.val_files if has_val else job.train_files
    ov["data.val_max_samples"] = -1 if has_val else NO_VAL_SAMPLES
    ov["data.train_batch_size"] = s.prompts_per_step
    ov["data.max_prompt_length"] = s.max_prompt_length
    ov["data.max_response_length"] = s.sampling.max_new_tokens
    ov["data.filter_overlong_prompts"] = True
    ov["data.truncation"] = "error"
    ov["data.shuffle"] = True
    ov["data.seed"] = job.seed
    add["data.apply_chat_template_kwargs.enable_thinking"] = job.thinking

    model = "actor_rollout_ref.model"
    ov[f"{model}.path"] = job.model_path
    ov[f"{model}.use_remove_padding"] = True
    ov[f"{model}.enable_gradient_checkpointing"] = s.activation_checkpointing
    add[f"{model}.override_config.attn_implementation"] = job.attn_implementation
    if s.lora.rank > 0:
        ov[f"{model}.lora_rank"] = s.lora.rank
        ov[f"{model}.lora_alpha"] = s.lora.alpha
        ov[f"{model}.target_modules"] = s.lora.target_modules

    actor = "actor_rollout_ref.actor"
    o = s.optim
    ov[f"{actor}.optim.lr"] = o.lr
    ov[f"{actor}.optim.lr_warmup_steps_ratio"] = o.warmup_ratio
    ov[f"{actor}.optim.lr_scheduler_type"] = o.schedule
    ov[f"{actor}.optim.weight_decay"] = o.weight_decay
    ov[f"{actor}.optim.betas"] = [o.beta1, o.beta2]
    ov[f"{actor}.optim.clip_grad"] = o.grad_clip
    ov[f"{actor}.grad_clip"] = o.grad_clip
    ov[f"{actor}.ppo_mini_batch_size"] = s.mini_batch_size
    ov[f"{actor}.ppo_micro_batch_size_per_gpu"] = s.micro_batch_size_per_gpu
    ov[f"{actor}.use_dynamic_bsz"] = False
    ov[f"{actor}.ppo_epochs"] = s.ppo_epochs
    ov[f"{actor}.clip_ratio"] = s.clip_low
    ov[f"{actor}.clip_ratio_low"] = s.clip_low
    ov[f"{actor}.clip_ratio_high"] = s.clip_high
    ov[f"{actor}.loss_agg_mode"] = s.loss_agg
    ov[f"{actor}.entropy_coeff"] = s.entropy_coef
    ov[f"{actor}.calculate_entropy"] = True
    ov[f"{actor}.use_kl_loss"] = s.kl_coef > 0
    ov[f"{actor}.kl_loss_coef"] = s.kl_coef if s.kl_coef > 0 else 0.001
    ov[f"{actor}.kl_loss_type"] = s.kl_type
    ov[f"{actor}.data_loader_seed"] = job.seed
    ov[f"{actor}.fsdp_config.param_offload"] = s.verl.param_offload
    ov[f"{actor}.fsdp_config.optimizer_offload"] = s.verl.optimizer_offload

    ref = "actor_rollout_ref.ref"
    ov[f"{ref}.log_prob_micro_batch_size_per_gpu"] = s.verl.log_prob_micro_batch_size_per_gpu
    ov[f"{ref}.fsdp_config.param_offload"] = s.verl.param_offload

    rollout = "actor_rollout_ref.rollout"
    ov[f"{rollout}.name"] = "vllm"
    ov[f"{rollout}.n"] = s.group_size
    ov[f"{rollout}.temperature"] = s.sampling.temperature
    ov[f"{rollout}.top_p"] = s.sampling.top_p
    ov[f"{rollout}.top_k"] = s.sampling.top_k
    ov[f"{rollout}.tensor_model_parallel_size"] = s.verl.rollout_tensor_parallel
    ov[f"{rollout}.gpu_memory_utilization"] = s.verl.rollout_gpu_memory_utilization
    ov[f"{rollout}.log_prob_micro_batch_size_per_gpu"] = s.verl.log_prob_micro_batch_size_per_gpu
    ov[f"{rollout}.seed"] = job.seed

    ov["reward.custom_reward_function.path"] = job.reward_path
    ov["reward.custom_reward_function.name"] = s.reward_name

    ov["trainer.nnodes"] = job.nnodes
    ov["trainer.n_gpus_per_node"] = job.gpus_per_node
    ov["trainer.total_epochs"] = job.total_epochs
    ov["trainer.total_training_steps"] = job.total_steps
    ov["trainer.save_freq"] = s.save_every_steps
    ov["trainer.max_actor_ckpt_to_keep"] = s.keep_checkpoints
    ov["trainer.resume_mode"] = "auto"
    ov["trainer.default_local_dir"] = job.checkpoint_dir
    ov["trainer.val_before_train"] = False
    ov["trainer.test_freq"] = s.val_every_steps if (has_val and s.val_every_steps > 0) else -1
    ov["trainer.logger"] = ["console", "file", *(["wandb"] if job.wandb else [])]
    ov["trainer.project_name"] = job.project_name
    ov["trainer.experiment_name"] = job.experiment_name
    ov["trainer.rollout_data_dir"] = job.rollout_dir

    # One node: verl starts Ray itself and must be told the CPUs Slurm gave us. Several: the entry attaches to the
    # cluster the launcher started, and Ray refuses resource arguments when attaching.
    ov["ray_kwargs.ray_init.num_cpus"] = job.cpus if job.nnodes == 1 else None
    for name, value in sorted(job.env_vars.items()):
        add[f"ray_kwargs.ray_init.runtime_env.env_vars.{name}"] = value
    return ov, add
