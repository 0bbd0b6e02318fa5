"""The manifest's common blocks (optim, precision, lora) map onto the engine's TrainConfig in one place, the same
for every method; the sft-trainer's JSON form of it round-trips into a TrainConfig for its torchrun workers."""

from __future__ import annotations

from stages.core.common_params import Lora, Optim, Precision
from stages.lm.engine import TrainConfig
from stages.lm.engine.config import shared_settings
from stages.lm.loading import DEFAULT_LORA_TARGETS


def test_common_blocks_map_onto_the_engine():
    optim = Optim(lr=2e-5, schedule="linear", warmup_ratio=0.1, weight_decay=0.0, grad_clip=0.5, beta1=0.8, beta2=0.95)
    got = shared_settings(optim, Precision(bf16=False, activation_checkpointing=False), Lora())
    assert got == {"lr": 2e-5, "schedule": "linear", "warmup_ratio": 0.1, "weight_decay": 0.0, "grad_clip": 0.5,
                   "betas": (0.8, 0.95), "precision": "fp32", "activation_checkpointing": False, "lora": None}
    config = TrainConfig(**shared_settings(Optim(), Precision(), Lora(rank=8, alpha=16)))
    assert config.precision == "auto" and config.lora.r == 8 and config.lora.target_modules == DEFAULT_LORA_TARGETS
    listed = shared_settings(Optim(), Precision(), Lora(rank=4, target_modules="q_proj, v_proj,"))["lora"]
    assert listed.target_modules == ("q_proj", "v_proj")


def test_sft_trainer_json_config_round_trips():
    import json
    from types import SimpleNamespace

    from stages.sft_trainer.native_engine import train_config
    from stages.sft_trainer.params import SFTParams

    params = SFTParams(lora={"rank": 4, "alpha": 8, "target_modules": "q_proj,v_proj"})
    runtime = SimpleNamespace(seed=3, tracking=SimpleNamespace(wandb=False, project=None, mode="offline"))
    prepared = SimpleNamespace(epochs=2, total_steps=10)
    as_json = json.loads(json.dumps(train_config(params, runtime, prepared)))
    config = TrainConfig.from_dict(as_json)
    assert config.lora.target_modules == ("q_proj", "v_proj") and config.lora.r == 4
    assert config.betas == (0.9, 0.999) and config.max_steps == 10 and config.seed == 3
