"""The entry module the launcher runs for ``engine: verl`` (``python -m stages.pi_distill.verl_main key=value ...``):
verl's ``main_ppo`` with the legacy trainer replaced by ``PiDistillTrainer``.

Why our own entry (the pattern of verl's recipes): ``main_ppo_v0.TaskRunner.run`` constructs ``RayPPOTrainer`` by
name, so a subclass needs a task runner that constructs it instead; everything else is verl's: the same Hydra
config (composed from the YAML in the installed verl, exactly as the stage composed and validated it before the
job), ``validate_config``, ``run_ppo`` (Ray start-up, or attaching to the cluster the launcher started on several
nodes), the worker roles and resource pools of ``BaseTaskRunner``, the datasets, and ``init_workers``/``fit``.
The task runner is a Ray actor defined here, so ``stages`` must be importable in Ray's workers (the stage puts it
on ``PYTHONPATH`` through the runtime environment; the image installs it).
"""

from __future__ import annotations

import sys

import ray
from verl.trainer.main_ppo_v0 import BaseTaskRunner


@ray.remote
class PiDistillTaskRunner(BaseTaskRunner):
    """``main_ppo_v0.TaskRunner`` building ``PiDistillTrainer``."""

    def run(self, config):  # noqa: ANN001, ANN201 - verl's signature
        from omegaconf import OmegaConf
        from verl.trainer.ppo.utils import create_rl_dataset, create_rl_sampler, need_critic, need_reference_policy
        from verl.utils.config import omega_conf_to_dataclass, validate_config
        from verl.utils.dataset.rl_dataset import collate_fn

        from stages.pi_distill.verl_trainer import PiDistillTrainer

        OmegaConf.resolve(config)
        _, worker_group_cls = self.add_actor_rollout_worker(config)
        self.add_critic_worker(config)
        self.add_reward_model_resource_pool(config)
        self.add_teacher_model_resource_pool(config)
        validate_config(config=config, use_reference_policy=need_reference_policy(config),
                        use_critic=need_critic(config))
        model = omega_conf_to_dataclass(config.actor_rollout_ref.model)
        data = config.data
        train = create_rl_dataset(data.train_files, data, model.tokenizer, model.processor, is_train=True,
                                  max_samples=data.get("train_max_samples", -1))
        val = create_rl_dataset(data.val_files, data, model.tokenizer, model.processor, is_train=False,
                                max_samples=data.get("val_max_samples", -1))
        trainer = PiDistillTrainer(
            config=config, tokenizer=model.tokenizer, processor=model.processor,
            role_worker_mapping=self.role_worker_mapping, resource_pool_manager=self.init_resource_pool_mgr(config),
            ray_worker_group_cls=worker_group_cls, train_dataset=train, val_dataset=val, collate_fn=collate_fn,
            train_sampler=create_rl_sampler(data, train),
        )
        trainer.init_workers()
        trainer.fit()


def main(argv: list[str] | None = None) -> None:
    from verl.trainer.main_ppo import run_ppo
    from verl.trainer.ppo.utils import need_critic, need_reference_policy
    from verl.utils.config import validate_config
    from verl.utils.device import auto_set_device

    from stages.lm.verl.config import compose_ppo

    config = compose_ppo(sys.argv[1:] if argv is None else argv)
    auto_set_device(config)
    validate_config(config=config, use_reference_policy=need_reference_policy(config), use_critic=need_critic(config))
    run_ppo(config, task_runner_class=PiDistillTaskRunner)


if __name__ == "__main__":
    main()
