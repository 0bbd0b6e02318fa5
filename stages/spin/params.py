"""Parameters of SPIN. Defaults from the paper (methods reference §3): beta 0.1, lr 5e-7 linear with warm-up 0.1,
global batch 64, max length 1024 (prompt 512), one sample per prompt at temperature 1.0, this and the previous
iteration's pairs, and faithful SPIN (a correct own sample is still the rejected side).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

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
    epochs_per_iteration: float = Field(2.0, gt=0, le=100, description="Passes over an iteration's pairs.")
    global_batch_size: int = Field(64, ge=1, le=65536, description="Pairs per optimizer step.")
    max_length: int = Field(1024, ge=16, le=131072, description="Longest prompt + response in tokens.")
    max_prompt_length: int = Field(512, ge=8, le=131072, description="Longest prompt in tokens.")
    sampling: Sampling = Field(default_factory=_sampling)
    keep_previous_iteration: bool = Field(True, description="Train on this and the previous iteration's pairs.")
    correct_sample_policy: Literal["keep", "drop"] = Field(
        "keep", description="keep = faithful SPIN (push down a correct own sample too); drop = skip such pairs."
    )
    save_iteration_models: bool = Field(False, description="Export every iteration's model, not just the last.")
    optim: Optim = Field(default_factory=_optim)
    lora: Lora = Field(default_factory=Lora)
    precision: Precision = Field(default_factory=Precision)
    save_every_steps: int = Field(50, ge=1, description="Checkpoint cadence within an iteration.")
