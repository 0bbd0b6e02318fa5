"""The shared native engine set up for π-Distill: trainer, generation from the training weights, log-prob scoring.

Why an adapter and not the engine as is: three small things ``stages.lm`` does not offer yet. (1) Its ``Trainer``
keeps checkpoints under its run folder; the stage publishes them as its ``checkpoints`` output, so a subclass
points ``checkpoint_root`` there. (2) The run's data position must ride inside the engine's atomic checkpoint; the
engine saves ``state_dict()`` of the object it trains over, so ``attach_state`` hands it the rollout state.
(3) Sampling must use the very weights being trained (on-policy), so ``generation_mode`` switches the trainer's
model to its ordinary attention for ``generate`` and back to packed attention for training. Everything else
(optimizer, schedule, precision, packing, checkpoint format, export) is the shared engine's, unchanged.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from stages.core import RunContext
from stages.lm.engine.config import TrainConfig
from stages.lm.engine.trainer import Trainer
from stages.lm.loading import DEFAULT_LORA_TARGETS, LoraSettings


class PiDistillTrainer(Trainer):
    def __init__(self, *args: Any, checkpoint_root: Path, **kwargs: Any) -> None:
        self._checkpoint_root = Path(checkpoint_root)
        super().__init__(*args, **kwargs)

    @property
    def checkpoint_root(self) -> Path:
        return self._checkpoint_root

    def attach_state(self, state: Any) -> None:
        """Save ``state.state_dict()`` in every checkpoint and restore it on ``resume(state)``."""
        self._data = state


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
        micro_batch_tokens=p.micro_batch_tokens,
        max_length=p.max_length,
        precision="auto" if p.precision.bf16 else "fp32",
        fsdp="off",
        activation_checkpointing=p.precision.activation_checkpointing,
        lora=lora,
        seed=ctx.runtime.seed,
        checkpoint_every=0,
        keep_last=p.keep_checkpoints,
        log_every=1,
    )


def make_trainer(ctx: RunContext, optimizer_steps: int) -> PiDistillTrainer:
    return PiDistillTrainer(train_config(ctx), ctx.inputs["model"].path, ctx.local_output_dir / "native",
                            total_steps=optimizer_steps, run_name=ctx.manifest.run_id,
                            checkpoint_root=ctx.checkpoint_dir)


@contextlib.contextmanager
def generation_mode(trainer: Trainer) -> Iterator[Any]:
    """The trainer's model with ordinary attention, in eval mode, for ``generate``; restored afterwards."""
    from stages.lm.engine.model import set_attention

    module = trainer.module
    training_attn = module.causal_lm.config._attn_implementation
    set_attention(module.model, module.generation_attn)
    try:
        yield module.model
    finally:
        set_attention(module.model, training_attn)
        module.train()


def generate(trainer: Trainer, prompt_ids: Sequence[Sequence[int]], *, n: int, sampling: Any, seed: int,
             thinking: bool, batch_size: int) -> list[list[Any]]:
    """``n`` completions per prompt from the current weights (hf backend): one list of ``Completion`` per prompt."""
    from stages.lm.generation import SamplingParams, make_backend

    params = SamplingParams(n=n, temperature=sampling.temperature, top_p=sampling.top_p,
                            top_k=max(sampling.top_k, 0), max_tokens=sampling.max_new_tokens, seed=seed)
    with generation_mode(trainer) as model:
        backend = make_backend("hf", model=model, tokenizer=trainer.tokenizer, thinking=thinking,
                               batch_size=batch_size)
        results = backend.generate_from_ids([list(p) for p in prompt_ids], params)
    return [list(r.completions) for r in results]


def score(trainer: Trainer, groups: list[list[Any]]) -> list[list[list[float]]]:
    """log p(token | earlier tokens) of every sample of every group under the current weights."""
    return trainer.logprobs(groups)
