"""The verl engine's config: every override the stage generates composes against verl's real ``ppo_trainer`` config
and passes verl's own ``validate_config`` for 1/2/4 GPUs on 1/2 nodes (π-Distill at several alphas, OPSD, LoRA);
our pre-submission rules agree with verl where verl checks; π-Distill's own keys reach the trainer."""

from __future__ import annotations

import pytest

pytest.importorskip("verl")

from stages.core.errors import InputError
from stages.lm.verl.config import compose_and_validate_ppo, compose_ppo, validate_ppo
from stages.lm.verl.overrides import override_keys
from stages.lm.verl.ppo_overrides import VerlJob
from stages.pi_distill.params import PiDistillParams
from stages.pi_distill.verl_overrides import build_overrides
from stages.pi_distill.verl_rules import verl_problems

SHAPES = [(nodes, gpus) for nodes in (1, 2) for gpus in (1, 2, 4)]
REWARD = "/opt/forgetting-llms/stages/envs/verl_reward.py"
VARIANTS = {
    "pi-distill": {},
    "teacher-only": {"alpha": 1.0, "beta": 0.25, "mini_batch_size": 16, "ppo_epochs": 1},
    "opsd": {"variant": "opsd", "drop_zero_variance_groups": False},
    "lora-cosine": {"lora": {"rank": 64, "alpha": 128}, "optim": {"lr": 5e-6, "schedule": "cosine"},
                    "verl": {"param_offload": True, "rollout_gpu_memory_utilization": 0.6}},
}
CASES = [("pi-distill", n, g) for n, g in SHAPES] + [("opsd", 2, 4), ("teacher-only", 2, 2),
                                                     ("lora-cosine", 1, 4)]


def job(nodes: int = 1, gpus: int = 1, **kw) -> VerlJob:
    base = {"model_path": "/models/Qwen3-8B-Base", "train_files": "/scratch/run one/data/train.parquet",
            "val_files": "/scratch/run one/data/val.parquet", "output_dir": "/scratch/runs/qwen3-8b.base.math.pi.s1",
            "reward_path": REWARD, "nnodes": nodes, "gpus_per_node": gpus, "cpus": 16, "total_steps": 100,
            "total_epochs": 2, "env_vars": {"WANDB_MODE": "offline", "HF_HUB_OFFLINE": "1"}}
    return VerlJob(**{**base, **kw})


@pytest.mark.parametrize("variant,nodes,gpus", CASES)
def test_overrides_compose_and_pass_verls_validation(variant, nodes, gpus):
    p = PiDistillParams(**VARIANTS[variant])
    assert verl_problems(p, nodes, gpus) == []
    cfg = compose_and_validate_ppo(build_overrides(p, job(nodes, gpus)))
    a = cfg.actor_rollout_ref
    assert cfg.trainer.use_v1 is False  # the legacy RayPPOTrainer our trainer subclasses
    assert cfg.trainer.nnodes == nodes and cfg.trainer.n_gpus_per_node == gpus
    assert cfg.algorithm.adv_estimator == "grpo" and a.rollout.name == "vllm" and a.rollout.n == p.group_size
    assert dict(cfg.pi_distill) == {"variant": p.variant, "alpha": p.alpha, "beta": p.beta,
                                    "drop_zero_variance_groups": p.drop_zero_variance_groups}
    assert a.actor.clip_ratio_c > 2.0e8 and a.actor.clip_ratio_low == a.actor.clip_ratio_high == p.clip_ratio
    assert a.actor.shuffle is False and a.actor.ppo_epochs == p.ppo_epochs and a.actor.use_kl_loss is False
    assert a.actor.ppo_mini_batch_size == (p.mini_batch_size or p.prompts_per_step)
    assert cfg.reward.custom_reward_function.path == REWARD  # the reward file grpo-trainer uses
    assert cfg.data.val_files == "/scratch/run one/data/val.parquet" and cfg.trainer.test_freq == 1
    assert a.rollout.val_kwargs.do_sample is True and a.rollout.val_kwargs.n == 1
    assert a.rollout.val_kwargs.temperature == p.sampling.temperature
    assert cfg.trainer.save_freq == p.save_every_steps and cfg.trainer.resume_mode == "auto"
    assert cfg.ray_kwargs.ray_init.num_cpus == (16 if nodes == 1 else None)
    assert cfg.data.apply_chat_template_kwargs.enable_thinking is False
    assert a.actor.optim.lr == p.optim.lr


def test_the_trainer_reads_its_settings_from_the_composed_config():
    from stages.pi_distill.verl_trainer import PiSettings, check_supported

    cfg = compose_ppo(build_overrides(PiDistillParams(alpha=0.25, beta=0.5), job(1, 2)))
    pi = PiSettings.from_config(cfg)
    assert (pi.variant, pi.alpha, pi.beta, pi.drop_zero_variance_groups) == ("pi-distill", 0.25, 0.5, True)
    assert pi.weights == (0.25, 0.75)
    check_supported(cfg)
    opsd = PiSettings.from_config(compose_ppo(build_overrides(PiDistillParams(variant="opsd"), job(1, 2))))
    assert opsd.weights == (1.0, 0.0)
    bad = PiDistillParams(verl={"extra_overrides": ["actor_rollout_ref.actor.use_kl_loss=true",
                                                    "algorithm.rollout_correction.rollout_is=token"]})
    with pytest.raises(ValueError, match="rollout_correction.*KL-to-reference"):
        check_supported(compose_ppo(build_overrides(bad, job(1, 2))))


@pytest.mark.parametrize("params,nodes,gpus", [
    ({"prompts_per_step": 10, "group_size": 4}, 1, 3),  # 40 responses over 3 GPUs
    ({"prompts_per_step": 6, "group_size": 2}, 2, 4),  # 12 responses over 8 GPUs
])
def test_batch_rules_agree_with_verl(params, nodes, gpus):
    p = PiDistillParams(**params)
    assert any("divisible by the" in x for x in verl_problems(p, nodes, gpus))
    with pytest.raises(InputError, match="real_train_batch_size"):
        validate_ppo(compose_ppo(build_overrides(p, job(nodes, gpus))))


def test_micro_batch_rules_count_both_row_kinds():
    """verl splits each GPU's update rows into equal micro-batches; the student twins double those rows."""
    p = PiDistillParams(prompts_per_step=4, group_size=4, verl={"micro_batch_size_per_gpu": 16,
                                                                "log_prob_micro_batch_size_per_gpu": 8})
    assert verl_problems(p, 1, 2) == []  # 16 responses: 8 per GPU to score, 2 x 8 update rows per GPU
    assert "update rows per GPU" in " ".join(verl_problems(p.model_copy(update={"alpha": 1.0}), 1, 2))
    assert "log_prob_micro_batch_size_per_gpu" in " ".join(verl_problems(p, 1, 4))


def test_settings_verl_has_no_counterpart_for_are_refused():
    assert "needs GPUs" in verl_problems(PiDistillParams(), 1, 0)[0]
    text = " ".join(verl_problems(PiDistillParams(
        student_clip_ratio=0.3, optim={"schedule": "linear"}, precision={"bf16": False}, generation_backend="vllm",
        verl={"rollout_tensor_parallel": 4, "extra_overrides": ["trainer.save_freq"]}), 1, 2))
    for needle in ("student_clip_ratio 0.3", "constant or cosine", "bf16", "rollout_tensor_parallel 4",
                   "generation_backend", "not a Hydra override"):
        assert needle in text, needle
    assert verl_problems(PiDistillParams(variant="opsd", student_clip_ratio=0.3), 1, 1) == []  # unused by OPSD


def test_unknown_extra_override_fails_and_paths_survive_quoting():
    unknown = PiDistillParams(verl={"extra_overrides": ["actor_rollout_ref.actor.no_such_setting=1"]})
    with pytest.raises(InputError, match="no_such_setting"):
        compose_ppo(build_overrides(unknown, job()))
    tricky = "/scratch/it's a path,with=odd [chars]/train.parquet"
    overrides = build_overrides(PiDistillParams(), job(train_files=tricky))
    assert compose_ppo(overrides).data.train_files == tricky
    assert override_keys(overrides)["data.train_files"].startswith("'")


def test_the_entry_runs_verls_trainer_with_one_method_changed():
    """No fork: the entry's task runner is a Ray actor over verl's own ``BaseTaskRunner``, and the trainer is verl's
    ``RayPPOTrainer`` with ``_update_actor`` overridden (plus the other view's tokenizer and its settings)."""
    from verl.trainer.main_ppo_v0 import BaseTaskRunner
    from verl.trainer.ppo.ray_trainer import RayPPOTrainer

    from stages.pi_distill.verl_main import PiDistillTaskRunner
    from stages.pi_distill.verl_trainer import PiDistillTrainer

    assert issubclass(PiDistillTrainer, RayPPOTrainer)
    own = {name for name in vars(PiDistillTrainer) if not name.startswith("__")}
    assert own == {"_update_actor", "other_prompt_ids"}
    assert hasattr(PiDistillTaskRunner, "remote")  # a Ray actor class
    assert any(issubclass(c, BaseTaskRunner) for c in PiDistillTaskRunner.__ray_metadata__.modified_class.__mro__)
