"""The native engine's trainer and loss for a GRPO run: the manifest's settings mapped onto ``stages.lm``.

Why an adapter: ``stages.lm``'s ``Trainer`` keeps its checkpoints under its run folder; the stage publishes them
as its ``checkpoints`` output (``<output_dir>/checkpoints``, the same place verl writes to), so this subclass only
points ``checkpoint_root`` there and keeps the engine's per-optimizer-step log in ``native/``. Everything else
(optimizer, schedule, precision, packing, checkpoint format, export) is the shared engine's, unchanged.
FSDP is off: one process generates with and trains the same weights.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from stages.core import RunContext
from stages.lm.engine.config import TrainConfig
from stages.lm.engine.trainer import Trainer
from stages.lm.loading import DEFAULT_LORA_TARGETS, LoraSettings
from stages.lm.losses.grpo import GRPOLoss


class GRPOEngineTrainer(Trainer):
    def __init__(self, *args: Any, checkpoint_root: Path, **kwargs: Any) -> None:
        self._checkpoint_root = Path(checkpoint_root)
        super().__init__(*args, **kwargs)

    @property
    def checkpoint_root(self) -> Path:
        return self._checkpoint_root


def train_config(ctx: RunContext) -> TrainConfig:
    p = ctx.params
    lora = None
    if p.lora.rank > 0:
        targets = DEFAULT_LORA_TARGETS if p.lora.target_modules == "all-linear" else tuple(
            t.strip() for t in p.lora.target_modules.split(",") if t.strip())
        lora = LoraSettings(r=p.lora.rank, alpha=p.lora.alpha, dropout=p.lora.dropout, target_modules=targets)
    return TrainConfig(
        lr=p.optim.lr,
        schedule=p.optim.schedule,
        warmup_ratio=p.optim.warmup_ratio,
        weight_decay=p.optim.weight_decay,
        grad_clip=p.optim.grad_clip,
        betas=(p.optim.beta1, p.optim.beta2),
        micro_batch_tokens=p.native.micro_batch_tokens,
        max_length=p.max_prompt_length + p.sampling.max_new_tokens,
        precision="auto" if p.precision.bf16 else "fp32",
        fsdp="off",
        activation_checkpointing=p.precision.activation_checkpointing,
        lora=lora,
        seed=ctx.runtime.seed,
        checkpoint_every=0,
        keep_last=p.keep_checkpoints,
        log_every=1,
    )


def make_trainer(ctx: RunContext, optimizer_steps: int, tokenizer: Any) -> tuple[GRPOEngineTrainer, GRPOLoss]:
    p = ctx.params
    trainer = GRPOEngineTrainer(
        train_config(ctx),
        ctx.inputs["model"].path,
        ctx.local_output_dir / "native",
        total_steps=optimizer_steps,
        reference=p.kl_enabled,
        run_name=ctx.manifest.run_id,
        tokenizer=tokenizer,
        checkpoint_root=ctx.checkpoint_dir,
    )
    loss = GRPOLoss(clip_low=p.clip_ratio, clip_high=p.clip_ratio_high, kl_beta=p.kl_coef, aggregation=p.loss_agg)
    return trainer, loss
