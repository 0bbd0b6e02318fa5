"""Learning-rate schedule: linear warm-up, then cosine, linear or constant.

Why a pure function of the step: the schedule's whole state is the step counter, which the checkpoint already
holds, so resuming reproduces the learning rate exactly with no scheduler object to save.
"""

from __future__ import annotations

import math


def warmup_steps(total_steps: int, warmup_ratio: float) -> int:
    return math.ceil(total_steps * warmup_ratio) if warmup_ratio > 0 else 0


def lr_at(step: int, *, base_lr: float, total_steps: int, warmup_ratio: float, schedule: str,
          min_lr_ratio: float = 0.0) -> float:
    """Learning rate for optimizer step ``step`` (0-based) of ``total_steps``."""
    warm = warmup_steps(total_steps, warmup_ratio)
    if step < warm:
        return base_lr * (step + 1) / warm
    if schedule == "constant":
        return base_lr
    decay_steps = max(1, total_steps - warm)
    progress = min(1.0, (step - warm) / decay_steps)
    if schedule == "cosine":
        factor = 0.5 * (1.0 + math.cos(math.pi * progress))
    elif schedule == "linear":
        factor = 1.0 - progress
    else:
        raise ValueError(f"unknown schedule {schedule!r}")
    return base_lr * (min_lr_ratio + (1.0 - min_lr_ratio) * factor)
