"""Every override the stage can generate, composed against verl 0.9.1's real ``sft_trainer_engine`` config and
checked by verl's own config classes, for 1, 2 and 4 GPUs on 1 and 2 nodes; unknown keys must fail."""

from __future__ import annotations

from pathlib import Path

import pytest

from stages.core.errors import InputError
from stages.lm.verl import config as shared
from stages.sft_trainer import verl_config
from stages.sft_trainer.params import SFTParams
from stages.sft_trainer.plan import World
from stages.sft_trainer.verl_overrides import NEW_KEYS, VerlJob, build_overrides, override_values

pytestmark = pytest.mark.skipif(not shared.verl_installed(), reason="verl is not installed")

WORLDS = [(nodes, gpus) for nodes in (1, 2) for gpus in (1, 2, 4)]
VARIANTS = {
    "defaults": {},
    "lora": {"lora": {"rank": 8, "alpha": 16, "target_modules": "q_proj,v_proj"}, "val_fraction": 0.1},
    "fp32-offload-constant": {
        "precision": {"bf16": False, "activation_checkpointing": False},
        "optim": {"lr": 1e-4, "schedule": "constant", "warmup_ratio": 0.0},
        "truncation": "right",
        "verl": {"param_offload": True, "optimizer_offload": True, "attn_implementation": "flash_attention_2"},
        "keep_checkpoints": 5,
    },
}


def job(tmp: Path, model: Path, world: World, *, val: bool, **kw) -> VerlJob:
    fields: dict = {
        "model_dir": model, "train_file": tmp / "data dir" / "train.parquet",
        "val_file": (tmp / "val.parquet") if val else None, "checkpoint_dir": tmp / "checkpoints", "world": world,
        "total_steps": 40, "epochs": 2, "save_freq": 7, "run_id": "qwen3-4b.base.gsm8k.gt-sft+lr1e-4.s1", "seed": 3,
        "thinking": False, "wandb": False,
    }
    fields.update(kw)
    return VerlJob(**fields)


_VALIDATED: set[str] = set()


def validate_once(cfg) -> None:
    """verl's checks on the config sections they read; identical sections (the world changes none of them) are
    checked once, since loading the tokenizer twice per check costs seconds."""
    import json

    from omegaconf import OmegaConf

    key = json.dumps({s: OmegaConf.to_container(cfg[s], resolve=True) for s in ("model", "engine", "optim", "checkpoint")},
                     sort_keys=True, default=str)
    if key not in _VALIDATED:
        shared.validate_sft(cfg)
        _VALIDATED.add(key)


def applied(cfg, key: str, value) -> None:
    from omegaconf import OmegaConf

    got = OmegaConf.select(cfg, key)
    got = OmegaConf.to_container(got) if OmegaConf.is_config(got) else got
    if isinstance(value, tuple):
        value = list(value)
    assert got == value, f"{key}: composed {got!r}, the stage set {value!r}"


@pytest.mark.parametrize("nodes,gpus", WORLDS)
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_generated_overrides_compose_and_pass_verls_checks(tmp_path, tiny_model_dir, nodes, gpus, variant):
    params = SFTParams.model_validate({"global_batch_size": 64, **VARIANTS[variant]})
    world = World(nodes=nodes, ranks_per_node=gpus, cpu=False)
    j = job(tmp_path, tiny_model_dir, world, val=params.val_fraction > 0, wandb=variant == "lora",
            thinking=variant == "lora", attn_implementation="flash_attention_2" if variant != "defaults" else "sdpa")
    values = override_values(params, j)
    cfg = verl_config.compose(build_overrides(params, j))
    for key, value in values.items():  # every override reached the config: none was dropped or renamed
        applied(cfg, key, value)
    resolved = shared.resolved(cfg)
    assert resolved["trainer"]["nnodes"] == nodes and resolved["trainer"]["n_gpus_per_node"] == gpus
    assert resolved["data"]["train_batch_size"] % (nodes * gpus) == 0
    assert resolved["optim"]["lr"] == params.optim.lr  # never verl's 1e-3 default
    assert "wandb" not in resolved["trainer"]["logger"] or j.wandb
    validate_once(cfg)  # verl's own model/engine/optim/checkpoint config classes accept it


def test_cpu_world_overrides_compose(tmp_path, tiny_model_dir):
    params = SFTParams.model_validate({"global_batch_size": 4, "truncation": "drop"})
    j = job(tmp_path, tiny_model_dir, World(1, 2, cpu=True), val=False)
    cfg = verl_config.compose(build_overrides(params, j))
    resolved = shared.resolved(cfg)
    assert resolved["trainer"]["device"] == "cpu" and resolved["engine"]["use_torch_compile"] is False
    assert resolved["engine"]["mixed_precision"]["param_dtype"] == "fp32"
    assert resolved["data"]["truncation"] == "error"  # `drop` rows are removed before verl sees them
    validate_once(cfg)


def test_new_keys_are_really_absent_from_verls_yaml(tmp_path, tiny_model_dir):
    """`+` is only for keys verl's YAML lacks: without it they must fail, so the list cannot rot."""
    params = SFTParams.model_validate({"global_batch_size": 4})
    overrides = build_overrides(params, job(tmp_path, tiny_model_dir, World(1, 1, cpu=True), val=False))
    for key in NEW_KEYS:
        plain = [o[1:] if o.startswith(f"+{key}=") else o for o in overrides]
        with pytest.raises(InputError, match="rejected"):
            verl_config.compose(plain)


@pytest.mark.parametrize("bad", ["data.no_such_key=1", "trainer.typo_freq=5", "optimm.lr=1e-4", "data.prompt_key=q",
                                 "model.partial_pretrain=/x"])
def test_unknown_keys_fail(tmp_path, tiny_model_dir, bad):
    params = SFTParams.model_validate({"global_batch_size": 8, "verl": {"extra_overrides": [bad]}})
    overrides = build_overrides(params, job(tmp_path, tiny_model_dir, World(1, 2), val=False))
    assert overrides[-1] == bad
    with pytest.raises(InputError) as err:
        verl_config.compose(overrides)
    assert err.value.path == "$.spec.params" and bad.split("=")[0] in str(err.value)


def test_known_extra_override_is_applied(tmp_path, tiny_model_dir):
    params = SFTParams.model_validate({"global_batch_size": 8, "verl": {"extra_overrides": ["engine.fsdp_size=2"]}})
    cfg = verl_config.compose(build_overrides(params, job(tmp_path, tiny_model_dir, World(1, 2), val=False)))
    assert cfg.engine.fsdp_size == 2


def test_verl_rejects_a_bad_value_through_its_own_checks(tmp_path, tiny_model_dir):
    params = SFTParams.model_validate({"global_batch_size": 8, "verl": {"extra_overrides": ["optim.lr_scheduler_type=wsd"]}})
    cfg = verl_config.compose(build_overrides(params, job(tmp_path, tiny_model_dir, World(1, 2), val=False)))
    with pytest.raises(InputError, match="optim config is invalid"):
        shared.validate_sft(cfg)
