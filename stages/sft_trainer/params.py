"""Parameters of the SFT trainer. Defaults follow *Retaining by Doing* (methods reference §2): 2 epochs, cosine,
warm-up 0.03, clip 1.0, global batch 256, max length 4096; lr 5e-5 suits 4-8B models (1e-4 for 1-1.5B).
Learning-rate sweeps are several manifests, never a loop inside one run.

Every top-level setting means the same thing on both engines (``native`` and ``verl``), so a study switches engines
with ``runtime.engine`` alone; the few knobs only verl has live in the ``verl`` block. The thinking mode is not a
param: it is ``runtime.thinking``, the study-wide switch (see ``verl_dataset`` for what it changes in training).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from stages.core.common_params import Lora, NativeEngineOptions, Optim, Precision
from stages.core.model_base import StrictModel


def _optim() -> Optim:
    return Optim(lr=5e-5, schedule="cosine", warmup_ratio=0.03)


class VerlOptions(StrictModel):
    """Settings only the verl engine has (FSDP offload, attention kernel, raw overrides)."""

    param_offload: bool = Field(False, description="Offload FSDP parameters to CPU (e.g. 14B full fine-tuning).")
    optimizer_offload: bool = Field(False, description="Offload the optimizer state to CPU.")
    attn_implementation: Literal["auto", "flash_attention_2", "sdpa"] = Field(
        "auto", description="Attention kernel; auto = flash_attention_2 when flash-attn is installed, else sdpa."
    )
    extra_overrides: list[str] = Field(
        default_factory=list,
        description="Raw verl Hydra overrides appended last (`key=value`); composed against verl's config before "
        "the run, so an unknown key is an error. Recorded in the manifest.",
    )


class NativeOptions(NativeEngineOptions):
    """Settings only the native engine has."""


class SFTParams(StrictModel):
    epochs: float = Field(2.0, gt=0, le=100, description="Passes over the training data (fractions allowed).")
    max_steps: int | None = Field(None, ge=1, description="Stop after this many optimizer steps (caps epochs).")
    global_batch_size: int = Field(
        256, ge=1, le=65536, description="Sequences per optimizer step over all GPUs; must divide by nodes x GPUs."
    )
    micro_batch_tokens: int = Field(
        8192, ge=64, le=1_048_576, description="Token budget of one forward pass per GPU (verl max_token_len_per_gpu)."
    )
    max_length: int = Field(4096, ge=16, le=131072, description="Longest sequence (prompt + response) in tokens.")
    truncation: Literal["error", "right", "drop"] = Field(
        "error", description="Rows longer than max_length: fail before training, cut the end, or drop them (counted)."
    )
    val_fraction: float = Field(
        0.0, ge=0.0, le=0.5, description="Share of rows held out for validation loss (needs >= global_batch_size rows)."
    )
    optim: Optim = Field(default_factory=_optim)
    lora: Lora = Field(default_factory=Lora)
    precision: Precision = Field(default_factory=Precision)
    save_every_steps: int = Field(
        50, ge=1, le=1_000_000, description="Checkpoint cadence in steps (verl: nudged down off epoch boundaries)."
    )
    keep_checkpoints: int = Field(2, ge=1, le=100, description="How many recent checkpoints to keep.")
    verl: VerlOptions = Field(default_factory=VerlOptions)
    native: NativeOptions = Field(default_factory=NativeOptions)

    @model_validator(mode="after")
    def _micro_batch_holds_a_sequence(self) -> SFTParams:
        if self.micro_batch_tokens < self.max_length:
            raise ValueError(
                f"`micro_batch_tokens` ({self.micro_batch_tokens}) must be >= `max_length` ({self.max_length}) so "
                "that the longest sequence fits one forward pass"
            )
        return self
