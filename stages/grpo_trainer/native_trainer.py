"""The native engine's trainer and loss for a GRPO run: the manifest's settings mapped onto ``stages.lm``.

Why an adapter: the stage publishes the engine's checkpoints as its ``checkpoints`` output
(``<output_dir>/checkpoints``, the same place verl writes to), so the trainer gets that ``checkpoint_root`` and
keeps its per-optimizer-step log in ``native/``. Everything else (optimizer, schedule, precision, packing,
checkpoint format, export) is the shared engine's, unchanged.
FSDP is off: one process generates with and trains the same weights.
"""

from __future__ import annotations

from typing import Any

from stages.core import RunContext
from stages.lm.engine.config import TrainConfig, shared_settings
from stages.lm.engine.trainer import Trainer
from stages.lm.losses.grpo import GRPOLoss


def train_config(ctx: RunContext) -> TrainConfig:
    p = ctx.params
    return TrainConfig(
        **shared_settings(p.optim, p.precision, p.lora),
        micro_batch_tokens=p.native.micro_batch_tokens,
        max_length=p.max_prompt_length + p.sampling.max_new_tokens,
        fsdp="off",
        seed=ctx.runtime.seed,
        checkpoint_every=0,
        keep_last=p.keep_checkpoints,
        log_every=1,
    )


def make_trainer(ctx: RunContext, optimizer_steps: int, tokenizer: Any) -> tuple[Trainer, GRPOLoss]:
    p = ctx.params
    trainer = Trainer(
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
