"""The shared native engine set up for π-Distill: trainer, generation from the training weights, log-prob scoring.

What the stage sets on the shared ``Trainer``: (1) its ``checkpoint_root`` is the stage's ``checkpoints``
output; (2) the run's data position rides inside the engine's atomic checkpoint (``attach_state`` with the rollout
state); (3) sampling uses the very weights being trained (on-policy) through ``Trainer.generation_model``.
Everything else (optimizer, schedule, precision, packing, checkpoint format, export) is the shared engine's,
unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from stages.core import RunContext
from stages.lm.engine.config import TrainConfig, shared_settings
from stages.lm.engine.trainer import Trainer


def train_config(ctx: RunContext) -> TrainConfig:
    p = ctx.params
    return TrainConfig(
        **shared_settings(p.optim, p.precision, p.lora),
        micro_batch_tokens=p.micro_batch_tokens,
        max_length=p.max_length,
        fsdp="off",
        seed=ctx.runtime.seed,
        checkpoint_every=0,
        keep_last=p.keep_checkpoints,
        log_every=1,
    )


def make_trainer(ctx: RunContext, optimizer_steps: int) -> Trainer:
    return Trainer(train_config(ctx), ctx.inputs["model"].path, ctx.local_output_dir / "native",
                            total_steps=optimizer_steps, run_name=ctx.manifest.run_id,
                            checkpoint_root=ctx.checkpoint_dir)


def generate(trainer: Trainer, prompt_ids: Sequence[Sequence[int]], *, n: int, sampling: Any, seed: int,
             thinking: bool, batch_size: int) -> list[list[Any]]:
    """``n`` completions per prompt from the current weights (hf backend): one list of ``Completion`` per prompt."""
    from stages.lm.generation import SamplingParams, make_backend

    params = SamplingParams(n=n, temperature=sampling.temperature, top_p=sampling.top_p,
                            top_k=max(sampling.top_k, 0), max_tokens=sampling.max_new_tokens, seed=seed)
    with trainer.generation_model() as model:
        backend = make_backend("hf", model=model, tokenizer=trainer.tokenizer, thinking=thinking,
                               batch_size=batch_size)
        results = backend.generate_from_ids([list(p) for p in prompt_ids], params)
    return [list(r.completions) for r in results]


def score(trainer: Trainer, groups: list[list[Any]]) -> list[list[list[float]]]:
    """log p(token | earlier tokens) of every sample of every group under the current weights."""
    return trainer.logprobs(groups)
