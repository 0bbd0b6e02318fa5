"""Parameters of the SFT trainer. Defaults follow *Retaining by Doing* (methods reference §2): 2 epochs, cosine,
warm-up 0.03, clip 1.0, global batch 256, max length 4096; lr 5e-5 suits 4-8B models (1e-4 for 1-1.5B).
Learning-rate sweeps are several manifests, never a loop inside one run.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from stages.core.common_params import Lora, Optim, Precision
from stages.core.model_base import StrictModel


def _optim() -> Optim:
    return Optim(lr=5e-5, schedule="cosine", warmup_ratio=0.03)


class SFTParams(StrictModel):
    epochs: float = Field(2.0, gt=0, le=100, description="Passes over the training data.")
    max_steps: int | None = Field(None, ge=1, description="Stop after this many optimizer steps (overrides epochs).")
    global_batch_size: int = Field(256, ge=1, le=65536, description="Sequences per optimizer step, all GPUs.")
    micro_batch_tokens: int = Field(8192, ge=64, le=1_048_576, description="Token budget of one micro-batch/GPU.")
    max_length: int = Field(4096, ge=16, le=131072, description="Longest sequence (prompt + response) in tokens.")
    truncation: Literal["error", "right", "drop"] = Field(
        "error", description="What to do with longer rows: fail, cut the end, or drop them (counted)."
    )
    val_fraction: float = Field(0.0, ge=0.0, le=0.5, description="Share of rows held out for validation loss.")
    optim: Optim = Field(default_factory=_optim)
    lora: Lora = Field(default_factory=Lora)
    precision: Precision = Field(default_factory=Precision)
    save_every_steps: int = Field(50, ge=1, le=1_000_000, description="Checkpoint cadence in optimizer steps.")
    keep_checkpoints: int = Field(2, ge=1, le=100, description="How many recent checkpoints to keep.")
