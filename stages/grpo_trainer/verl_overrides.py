"""The verl overrides of one GRPO run, as plain data: params + resources + paths in, ``key=value`` strings out.

Why plain data: the overrides are the whole contract with verl, so they are built in one pure function that tests
compose against verl's real ``ppo_trainer`` config for every GPU/node shape, that the manifest records verbatim,
and that needs neither verl nor a GPU to compute. What every PPO-family stage sets (data, model, actor, vLLM
rollout, reward file, checkpoints, loggers, Ray) is ``stages.lm.verl.ppo_overrides``; GRPO adds its own: DAPO
dynamic sampling for zero-variance groups, the KL-to-reference ablation, clip-higher, the entropy bonus, validation.
"""

from __future__ import annotations

from stages.grpo_trainer.params import GRPOParams
from stages.lm.verl.overrides import render
from stages.lm.verl.ppo_overrides import PPOSettings, VerlJob, ppo_steps, ppo_values


def total_steps(num_prompts: int, params: GRPOParams) -> tuple[int, int]:
    """(rollout steps, epochs to allow) for a prompt set: verl drops the last partial batch of every epoch."""
    return ppo_steps(num_prompts, params.prompts_per_step, params.epochs, params.max_steps)


def settings(p: GRPOParams) -> PPOSettings:
    return PPOSettings(
        group_size=p.group_size, prompts_per_step=p.prompts_per_step, mini_batch_size=p.mini_batch_size,
        micro_batch_size_per_gpu=p.micro_batch_size_per_gpu, ppo_epochs=p.ppo_epochs,
        max_prompt_length=p.max_prompt_length, sampling=p.sampling, optim=p.optim, lora=p.lora,
        activation_checkpointing=p.precision.activation_checkpointing, clip_low=p.clip_ratio,
        clip_high=p.clip_ratio_high if p.clip_ratio_high is not None else p.clip_ratio, verl=p.verl,
        save_every_steps=p.save_every_steps, keep_checkpoints=p.keep_checkpoints, loss_agg=p.loss_agg,
        entropy_coef=p.entropy_coef, kl_coef=p.kl_coef, kl_type=p.kl_type,
        normalize_adv_by_std=p.normalize_adv_by_std, reward_name=p.reward_function.name,
        val_every_steps=p.val_every_steps,
    )


def build_overrides(params: GRPOParams, job: VerlJob) -> list[str]:
    """The full, ordered list of ``key=value`` overrides for ``python -m verl.trainer.main_ppo``."""
    ov, add = ppo_values(settings(params), job)
    ov["algorithm.filter_groups.enable"] = params.drop_zero_variance_groups
    if params.drop_zero_variance_groups:
        ov["algorithm.filter_groups.metric"] = "reward"
    return render({**ov, **add}, new_keys=add, extra=params.verl.extra_overrides)

