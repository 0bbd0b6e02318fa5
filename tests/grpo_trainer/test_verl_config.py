"""Every override the stage generates composes against verl's real ``ppo_trainer`` config and passes verl's own
``validate_config`` (verl reference §7 item 2), for 1/2/4 GPUs on 1/2 nodes; our pre-submission batch rules agree
with verl's; an unknown key fails."""

from __future__ import annotations

import pytest

pytest.importorskip("verl")

from stages.core.errors import InputError
from stages.grpo_trainer.params import GRPOParams
from stages.grpo_trainer.rules import verl_problems
from stages.grpo_trainer.verl_overrides import VerlJob, build_overrides
from stages.lm.verl.config import compose_and_validate_ppo, compose_ppo, validate_ppo
from stages.lm.verl.overrides import override_keys

SHAPES = [(nodes, gpus) for nodes in (1, 2) for gpus in (1, 2, 4)]


def job(nodes: int = 1, gpus: int = 1, **kw) -> VerlJob:
    base = {
        "model_path": "/models/Qwen3-1.7B-Base",
        "train_files": "/data/gsm8k prompts/train.parquet",
        "output_dir": "/scratch/runs/qwen3-1.7b.base.gsm8k.on-rl.s1",
        "reward_path": "/opt/forgetting-llms/stages/envs/verl_reward.py",
        "nnodes": nodes,
        "gpus_per_node": gpus,
        "cpus": 16,
        "total_steps": 100,
        "total_epochs": 3,
        "env_vars": {"WANDB_MODE": "offline", "HF_HUB_OFFLINE": "1"},
    }
    base.update(kw)
    return VerlJob(**base)


VARIANTS = {
    "defaults": {},
    "kl-ablation": {"kl_coef": 0.001},
    "lora-clip-higher": {"lora": {"rank": 64, "alpha": 128}, "clip_ratio_high": 0.28, "drop_zero_variance_groups": False},
    "cosine-seq-mean": {"optim": {"lr": 2e-6, "schedule": "cosine"}, "loss_agg": "seq-mean-token-mean",
                        "entropy_coef": 0.001, "precision": {"activation_checkpointing": False}},
}


CASES = [(v, n, g) for v in ("defaults", "kl-ablation") for n, g in SHAPES] + [
    ("lora-clip-higher", 2, 4),
    ("cosine-seq-mean", 1, 2),
]


@pytest.mark.parametrize("variant,nodes,gpus", CASES)
def test_overrides_compose_and_validate(variant, nodes, gpus):
    params = GRPOParams(**VARIANTS[variant])
    assert verl_problems(params, nodes, gpus) == []
    overrides = build_overrides(params, job(nodes, gpus, val_files="/data/val.parquet" if nodes == 2 else None))
    cfg = compose_and_validate_ppo(overrides)
    a = cfg.actor_rollout_ref
    assert cfg.algorithm.adv_estimator == "grpo"
    assert a.rollout.name == "vllm" and a.rollout.n == params.group_size
    assert cfg.trainer.nnodes == nodes and cfg.trainer.n_gpus_per_node == gpus
    assert cfg.reward.custom_reward_function.path == "/opt/forgetting-llms/stages/envs/verl_reward.py"
    assert cfg.custom_reward_function.path is None  # the legacy top-level keys are ignored by main_ppo: never set
    assert cfg.trainer.save_freq == params.save_every_steps > 0 and cfg.trainer.resume_mode == "auto"
    assert cfg.trainer.val_before_train is False
    assert cfg.data.train_files == "/data/gsm8k prompts/train.parquet"
    assert a.actor.optim.lr == params.optim.lr and a.actor.clip_ratio_low == params.clip_ratio
    assert a.actor.use_kl_loss is (params.kl_coef > 0)
    assert a.model.override_config.attn_implementation == "flash_attention_2"
    assert cfg.data.apply_chat_template_kwargs.enable_thinking is False
    assert cfg.ray_kwargs.ray_init.runtime_env.env_vars.WANDB_MODE == "offline"
    # one node: verl starts Ray with Slurm's CPUs; several: main_ppo attaches and must pass no resources
    assert cfg.ray_kwargs.ray_init.num_cpus == (16 if nodes == 1 else None)
    assert "wandb" not in cfg.trainer.logger and "file" in cfg.trainer.logger


def test_every_generated_key_exists_in_verl_config():
    """A key our builder writes without `+` must already exist in verl's config (no silently new keys)."""
    overrides = build_overrides(GRPOParams(kl_coef=0.001, lora={"rank": 8}), job(2, 4))
    cfg = compose_ppo(["actor_rollout_ref.rollout.name=vllm"])  # the one mandatory value
    from omegaconf import OmegaConf

    for item in overrides:
        key = item.split("=", 1)[0]
        if key.startswith("+"):
            continue
        assert OmegaConf.select(cfg, key, default="<absent>") != "<absent>", key


def test_unknown_key_fails():
    params = GRPOParams(verl={"extra_overrides": ["actor_rollout_ref.actor.no_such_setting=1"]})
    with pytest.raises(InputError, match="no_such_setting"):
        compose_ppo(build_overrides(params, job()))


def test_malformed_extra_override_is_caught_before_verl():
    params = GRPOParams(verl={"extra_overrides": ["trainer.save_freq"]})
    assert "not a Hydra override" in verl_problems(params, 1, 1)[0]


@pytest.mark.parametrize(
    "params,nodes,gpus",
    [
        ({"prompts_per_step": 64, "mini_batch_size": 32}, 1, 3),  # 512 rollouts over 3 GPUs
        ({"prompts_per_step": 6, "mini_batch_size": 6, "group_size": 2}, 2, 4),  # 12 rollouts over 8 GPUs
    ],
)
def test_batch_rules_agree_with_verl(params, nodes, gpus):
    p = GRPOParams(**params)
    problems = verl_problems(p, nodes, gpus)
    assert any("divisible" in x for x in problems), problems
    with pytest.raises(InputError, match="real_train_batch_size"):
        validate_ppo(compose_ppo(build_overrides(p, job(nodes, gpus))))


def test_mini_batch_rule_is_checked_before_submission():
    """verl only finds this one inside its workers (engine_workers.py): the mini-batch must split over ranks."""
    p = GRPOParams(prompts_per_step=8, mini_batch_size=1, group_size=2)  # 16 rollouts/step, 2 per update
    problems = verl_problems(p, 1, 4)
    assert len(problems) == 1 and "mini_batch_size x group_size" in problems[0]


def test_other_verl_rules():
    assert "needs GPUs" in verl_problems(GRPOParams(), 1, 0)[0]
    probs = verl_problems(
        GRPOParams(optim={"schedule": "linear"}, precision={"bf16": False}, verl={"rollout_tensor_parallel": 4}),
        1, 2,
    )
    text = " ".join(probs)
    assert "constant or cosine" in text and "bf16" in text and "rollout_tensor_parallel 4" in text


def test_override_values_survive_quoting():
    tricky = "/scratch/it's a path,with=odd [chars]/train.parquet"
    overrides = build_overrides(GRPOParams(), job(train_files=tricky))
    assert compose_ppo(overrides).data.train_files == tricky
    assert override_keys(overrides)["data.train_files"].startswith("'")
