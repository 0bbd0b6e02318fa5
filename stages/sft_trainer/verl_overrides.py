"""verl ``sft_trainer`` overrides built from a manifest, as plain data (verl reference §2).

Why plain data: the same list is composed against verl's real config in tests and before every run, recorded in
the manifest, and passed to torchrun, so what was checked is what ran. Every key here exists in verl 0.9.1's
``sft_trainer_engine`` config; ``+`` marks the two that its YAML does not declare (the attention override and, for
fp32, FSDP's mixed-precision policy).

The traps it guards against: ``optim.lr`` defaults to 1e-3 in verl (always set); attention defaults to
flash-attention 2, which needs the ``flash-attn`` package (``sdpa`` otherwise, and always on a CPU); the logger
defaults to wandb (console + verl's JSONL file logger here, wandb only when the manifest asks); ``save_freq=-1``
means no intermediate checkpoint (the cadence comes from ``plan.save_frequency``, off epoch boundaries);
``data.train_batch_size`` is floored per data-parallel rank (divisibility is checked before this runs); and the
Qwen3 think-tag mismatch of verl's per-turn dataset (our ``verl_dataset`` tokenizes instead, see there).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stages.lm.verl.overrides import render
from stages.sft_trainer.params import SFTParams
from stages.sft_trainer.plan import World

DATASET_MODULE = "pkg://stages.sft_trainer.verl_dataset"
DATASET_CLASS = "ChatFormatSFTDataset"
# keys verl's YAML does not declare (dataclass fields or free-form dicts): passed with `+`
NEW_KEYS = frozenset({"model.override_config.attn_implementation", "engine.mixed_precision"})


@dataclass(frozen=True)
class VerlJob:
    """Everything besides the params that the overrides depend on."""

    model_dir: Path
    train_file: Path
    val_file: Path | None
    checkpoint_dir: Path
    world: World
    total_steps: int
    epochs: int
    save_freq: int
    run_id: str
    project: str = "forgetting-llms"
    seed: int = 0
    thinking: bool = False
    wandb: bool = False
    attn_implementation: str = "sdpa"


def warmup_steps(total_steps: int, warmup_ratio: float) -> int:
    """Warm-up length in steps, rounded up as the native engine does (verl would floor the ratio)."""
    return math.ceil(total_steps * warmup_ratio) if warmup_ratio > 0 else 0


def _target_modules(value: str) -> str | list[str]:
    return value if value == "all-linear" else [m.strip() for m in value.split(",") if m.strip()]


def override_values(params: SFTParams, job: VerlJob) -> dict[str, Any]:
    """The overrides as an ordered mapping of dotted key -> value (before ``params.verl.extra_overrides``)."""
    world, cpu = job.world, job.world.cpu
    truncation = "right" if params.truncation == "right" else "error"  # `drop` rows are removed beforehand
    values: dict[str, Any] = {
        "data.train_files": str(job.train_file),
        "data.val_files": str(job.val_file) if job.val_file else None,
        "data.messages_key": "messages",
        "data.custom_cls.path": DATASET_MODULE,
        "data.custom_cls.name": DATASET_CLASS,
        "data.enable_thinking_default": job.thinking,
        "data.ignore_input_ids_mismatch": False,
        "data.train_batch_size": params.global_batch_size,
        "data.use_dynamic_bsz": True,
        "data.max_token_len_per_gpu": params.micro_batch_tokens,
        "data.max_length": params.max_length,
        "data.truncation": truncation,
        "data.pad_mode": "no_padding",
        "data.num_workers": 0 if cpu else 4,
        "model.path": str(job.model_dir),
        "model.trust_remote_code": False,
        "model.use_remove_padding": True,
        "model.enable_gradient_checkpointing": params.precision.activation_checkpointing,
        "model.lora_rank": params.lora.rank,
        "model.lora_alpha": params.lora.alpha,
        "model.target_modules": _target_modules(params.lora.target_modules),
        "model.override_config.attn_implementation": job.attn_implementation,
        "engine.strategy": "fsdp2",
        "engine.model_dtype": "fp32",
        "engine.param_offload": params.verl.param_offload,
        "engine.optimizer_offload": params.verl.optimizer_offload,
        "engine.use_torch_compile": not cpu,
        "engine.seed": job.seed,
        "optim.lr": params.optim.lr,
        "optim.lr_scheduler_type": params.optim.schedule,
        "optim.lr_warmup_steps": warmup_steps(job.total_steps, params.optim.warmup_ratio),
        "optim.lr_warmup_steps_ratio": params.optim.warmup_ratio,
        "optim.min_lr_ratio": 0.0,
        "optim.weight_decay": params.optim.weight_decay,
        "optim.clip_grad": params.optim.grad_clip,
        "optim.betas": [params.optim.beta1, params.optim.beta2],
        "trainer.default_local_dir": str(job.checkpoint_dir),
        "trainer.project_name": job.project,
        "trainer.experiment_name": job.run_id,
        "trainer.total_epochs": job.epochs,
        "trainer.total_training_steps": job.total_steps,
        "trainer.logger": ["console", "file", *(["wandb"] if job.wandb else [])],
        "trainer.seed": job.seed,
        "trainer.save_freq": job.save_freq,
        "trainer.test_freq": job.save_freq if job.val_file else -1,
        "trainer.max_ckpt_to_keep": params.keep_checkpoints,
        "trainer.resume_mode": "auto",
        "trainer.device": "cpu" if cpu else "cuda",
        "trainer.nnodes": world.nodes,
        "trainer.n_gpus_per_node": world.ranks_per_node,
    }
    if cpu or not params.precision.bf16:  # verl's FSDP mixed precision defaults to bf16 parameters
        values["engine.mixed_precision"] = {"param_dtype": "fp32", "reduce_dtype": "fp32", "buffer_dtype": "fp32"}
    return values


def build_overrides(params: SFTParams, job: VerlJob) -> list[str]:
    """``key=value`` strings for Hydra (``+key=value`` for keys verl's YAML lacks), then the raw extras."""
    return render(override_values(params, job), NEW_KEYS, params.verl.extra_overrides)
