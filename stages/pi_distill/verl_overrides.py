"""The verl overrides of one π-Distill/OPSD run, as plain data: params + the job in, ``key=value`` strings out.

Why plain data: what every PPO-family stage sets (data, model, actor optimiser and batches, vLLM rollout, the
reward file grpo-trainer uses too, checkpoints, loggers, Ray) comes from ``stages.lm.verl.ppo_overrides``, so the
tests compose this list against verl's real ``ppo_trainer`` config and verl's own ``validate_config`` for every
GPU/node shape, and the manifest records it verbatim. π-Distill's own keys:

- ``trainer.use_v1=false``: the legacy ``RayPPOTrainer`` path, whose ``_update_actor`` our trainer overrides;
- ``+pi_distill.{variant,alpha,beta,drop_zero_variance_groups}``: read by ``PiDistillTrainer`` in the driver;
- ``actor.clip_ratio_c=1e9``: verl's dual clip (for negative advantages, the loss is capped at ``-3 A``) off. Neither
  the paper's student term nor the native engine caps it, and the student's ratio pi_S / pi_T is far from 1 when
  the privileged information moves the teacher; 1e9 exceeds ``exp(20)``, verl's own clamp on the ratio, so the
  cap never binds;
- the actor update's data loader unshuffled (a teacher row and its student twin stay in one mini-batch);
- validation: the held-out prompts in the student view every step, one sample each at the training temperature
  (the held-out student reward), no validation before training.

The PPO mini-batch counts prompts, as everywhere (``mini_batch_size``, default all prompts of the step); the trainer
doubles verl's row count for it while the update holds teacher and student rows.
"""

from __future__ import annotations

from typing import Any

from stages.lm.verl.overrides import render
from stages.lm.verl.ppo_overrides import PPOSettings, VerlJob, ppo_values

NO_DUAL_CLIP = 1e9


def settings(p: Any) -> PPOSettings:
    return PPOSettings(
        group_size=p.group_size, prompts_per_step=p.prompts_per_step,
        mini_batch_size=p.mini_batch_size or p.prompts_per_step,
        micro_batch_size_per_gpu=p.verl.micro_batch_size_per_gpu, ppo_epochs=p.ppo_epochs,
        max_prompt_length=p.max_prompt_length, sampling=p.sampling, optim=p.optim, lora=p.lora,
        activation_checkpointing=p.precision.activation_checkpointing, clip_low=p.clip_ratio,
        clip_high=p.clip_ratio, verl=p.verl, save_every_steps=p.save_every_steps,
        keep_checkpoints=p.keep_checkpoints, val_every_steps=1,
    )


def build_overrides(params: Any, job: VerlJob) -> list[str]:
    """The full, ordered list of ``key=value`` overrides for ``python -m stages.pi_distill.verl_main``."""
    p = params
    ov, add = ppo_values(settings(p), job)
    ov["trainer.use_v1"] = False
    ov["data.val_max_samples"] = -1  # the val file holds exactly the held-out prompts the student answers
    actor = "actor_rollout_ref.actor"
    ov[f"{actor}.clip_ratio_c"] = NO_DUAL_CLIP
    ov[f"{actor}.shuffle"] = False
    val = "actor_rollout_ref.rollout.val_kwargs"
    ov[f"{val}.n"] = 1
    ov[f"{val}.do_sample"] = True
    ov[f"{val}.temperature"] = p.sampling.temperature
    ov[f"{val}.top_p"] = p.sampling.top_p
    ov[f"{val}.top_k"] = p.sampling.top_k
    add["pi_distill.variant"] = p.variant
    add["pi_distill.alpha"] = p.alpha
    add["pi_distill.beta"] = p.beta
    add["pi_distill.drop_zero_variance_groups"] = p.drop_zero_variance_groups
    return render({**ov, **add}, new_keys=add, extra=p.verl.extra_overrides)
