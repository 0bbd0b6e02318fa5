"""What the verl stages (grpo-trainer, pi-distill, sft-trainer) share: the multi-node Ray launcher and its health
check, and the rest of the verl integration. Stages never import each other, so whatever two verl stages both need
lives here; submodules import Ray and verl lazily, so importing this package is cheap.

- `config`         compose overrides against verl's packaged Hydra configs; verl's own validation (PPO, SFT)
- `overrides`      one renderer of Hydra override strings; raw-override checks; the attention kernel
- `ppo_overrides`  the ``ppo_trainer`` keys every PPO-family stage sets (``VerlJob``, ``PPOSettings``)
- `options`        the ``verl`` params block of the PPO-family stages
- `rules`          what verl cannot honour in the shared settings, checked before a job is submitted
- `cpu_platform`   verl's CPU platform shim (gloo, the FSDP engine on CPU) for CI
- `checkpoints`    verl's tracker and ``global_step_N`` folders
- `merge`          verl's model merger into a Hugging Face folder (LoRA folded)
- `ray_launch`, `ray_health`  the launcher script (Ray on every node, then the entry module) and its health check
- `ray_job`        a PPO-family job as a child process group: worker environment, progress, stop, final step
"""
