"""Parameters of SPIN. Defaults from the paper (methods reference §3; uclaml/SPIN configs and the released
iteration models' cards): beta 0.1, lr 5e-7 with a linear schedule and warm-up 0.1, 2 epochs per iteration,
global batch 64, max length 1024 (prompt 512), one sample per prompt at temperature 1.0 and top-p 1.0, this and the
previous iteration's pairs, and faithful SPIN (a correct own sample is still the rejected side).

Two deliberate departures, the same for every method of the study: the optimizer is the shared engine's AdamW (the
paper used RMSprop), and the generation budget is the domain's (``sampling.max_new_tokens``; the paper used 256).
Names shared with the other trainers (``optim``, ``lora``, ``precision``, ``sampling``, ``global_batch_size``,
``micro_batch_tokens``, ``max_length``, ``max_prompt_length``, ``save_every_steps``, ``keep_checkpoints``) mean the
same thing there.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from stages.core.common_params import Lora, Optim, Precision, Sampling
from stages.core.model_base import StrictModel


def _optim() -> Optim:
    return Optim(lr=5e-7, schedule="linear", warmup_ratio=0.1, weight_decay=0.0)


def _sampling() -> Sampling:
    return Sampling(temperature=1.0, top_p=1.0, max_new_tokens=256)


class SPINParams(StrictModel):
    iterations: int = Field(3, ge=1, le=20, description="Self-play iterations (the paper ran 4: 0-3).")
    beta: float = Field(0.1, gt=0.0, le=100.0, description="SPIN/DPO temperature beta (> 0).")
    loss: Literal["sigmoid", "hinge"] = Field("sigmoid", description="-log σ(β·margin), or relu(1 - β·margin).")
    epochs_per_iteration: float = Field(
        2.0, gt=0, le=100, description="Passes over an iteration's pairs (fractions allowed; the paper: 2)."
    )
    global_batch_size: int = Field(64, ge=1, le=65536, description="Pairs per optimizer step.")
    micro_batch_tokens: int = Field(
        8192, ge=64, le=1_048_576,
        description="Token budget of one forward pass; a pair (chosen + rejected) is never split, so it must be "
        ">= 2 x max_length.",
    )
    max_length: int = Field(1024, ge=16, le=131072, description="Longest prompt + response in tokens.")
    max_prompt_length: int = Field(
        512, ge=8, le=131072, description="Longest prompt in tokens; longer prompts are left out and counted."
    )
    sampling: Sampling = Field(default_factory=_sampling)
    chosen_source: Literal["reference_or_templated", "reference_solution"] = Field(
        "reference_or_templated",
        description="The chosen (ground-truth) response: the row's reference solution, else a templated "
        "answer-only response built from the ground truth (as the collector's GT-SFT targets; QA rows have no "
        "solution); `reference_solution` refuses rows without one.",
    )
    keep_previous_iteration: bool = Field(True, description="Train on this and the previous iteration's pairs.")
    correct_sample_policy: Literal["keep", "drop"] = Field(
        "keep", description="keep = faithful SPIN (push down a correct own sample too); drop = skip such pairs."
    )
    generation_backend: Literal["auto", "hf", "vllm"] = Field(
        "auto", description="How the model samples: transformers `generate` (hf) or vLLM; auto = vllm on a CUDA "
        "machine with vllm installed, else hf. The choice is recorded and kept on resume.",
    )
    generation_batch_size: int = Field(
        256, ge=1, le=1_000_000,
        description="Prompts per generation chunk. Each chunk is seeded from (seed, iteration, chunk) and "
        "checkpointed when written, so a resumed run reproduces the same samples.",
    )
    save_iteration_models: bool = Field(False, description="Export every iteration's model, not just the last.")
    optim: Optim = Field(default_factory=_optim)
    lora: Lora = Field(default_factory=Lora)
    precision: Precision = Field(default_factory=Precision)
    save_every_steps: int = Field(50, ge=1, le=1_000_000, description="Checkpoint cadence within an iteration.")
    keep_checkpoints: int = Field(2, ge=1, le=100, description="How many recent checkpoints to keep.")

    @field_validator("optim", "sampling", mode="before")
    @classmethod
    def _partial_blocks_keep_spin_defaults(cls, value: object, info: ValidationInfo) -> object:
        """``optim: {lr: 1e-6}`` changes the lr only: the rest stays SPIN's (linear, warm-up 0.1, no decay), not the
        shared block's generic defaults."""
        if isinstance(value, dict):
            base = _optim() if info.field_name == "optim" else _sampling()
            return {**base.model_dump(), **value}
        return value

    @model_validator(mode="after")
    def _lengths(self) -> SPINParams:
        if self.max_prompt_length + self.sampling.max_new_tokens > self.max_length:
            raise ValueError(
                f"`max_prompt_length` ({self.max_prompt_length}) + `sampling.max_new_tokens` "
                f"({self.sampling.max_new_tokens}) must be <= `max_length` ({self.max_length}), so that every "
                "own sample fits a training sequence"
            )
        if self.micro_batch_tokens < 2 * self.max_length:
            raise ValueError(
                f"`micro_batch_tokens` ({self.micro_batch_tokens}) must be >= 2 x `max_length` "
                f"({2 * self.max_length}): a pair's chosen and rejected sequences share one forward pass"
            )
        return self
