"""Parameters of π-Distill. Defaults from the methods reference §5 (single-turn instantiation): α 0.5, β 0.1,
lr 1e-6, clip 0.2, group 4, one PPO epoch, temperature 0.7. OPSD (student samples, reward shaped by the reverse
KL to the privileged teacher) is a switch of the same stage.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from stages.core.common_params import Lora, Optim, Precision, Sampling
from stages.core.model_base import StrictModel


def _optim() -> Optim:
    return Optim(lr=1e-6, schedule="constant", warmup_ratio=0.01, weight_decay=0.01)


def _sampling() -> Sampling:
    return Sampling(temperature=0.7, top_p=1.0, max_new_tokens=2048)


class PiDistillParams(StrictModel):
    variant: Literal["pi-distill", "opsd"] = Field("pi-distill", description="π-Distill, or the paper's OPSD.")
    alpha: float = Field(0.5, ge=0.0, le=1.0, description="Mix: 1 = teacher term only, 0 = student term only.")
    beta: float = Field(0.1, ge=0.0, le=100.0, description="Weight of the teacher-student log-ratio shaping.")
    group_size: int = Field(4, ge=2, le=1024, description="Teacher samples per prompt.")
    prompts_per_step: int = Field(32, ge=1, le=65536, description="Prompts per rollout batch.")
    ppo_epochs: int = Field(1, ge=1, le=16, description="Update passes per rollout batch.")
    epochs: float = Field(1.0, gt=0, le=1000, description="Passes over the prompt set.")
    max_steps: int | None = Field(None, ge=1, description="Stop after this many steps (overrides epochs).")
    clip_ratio: float = Field(0.2, gt=0.0, le=1.0, description="Teacher PPO clip epsilon.")
    student_clip_ratio: float = Field(0.2, gt=0.0, le=1.0, description="Student importance-ratio clip.")
    max_prompt_length: int = Field(2048, ge=16, le=131072, description="Longest (privileged) prompt in tokens.")
    sampling: Sampling = Field(default_factory=_sampling)
    privileged_template: str = Field("v1", description="Versioned template that shows the reference solution.")
    heldout_fraction: float = Field(0.05, ge=0.0, le=0.5, description="Prompts kept aside to measure the student.")
    drop_zero_variance_groups: bool = Field(True, description="Drop groups whose rewards are all equal.")
    optim: Optim = Field(default_factory=_optim)
    lora: Lora = Field(default_factory=Lora)
    precision: Precision = Field(default_factory=Precision)
    save_every_steps: int = Field(20, ge=1, description="Checkpoint cadence in steps.")
