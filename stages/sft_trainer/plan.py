"""The arithmetic of one SFT run: how many ranks, steps per epoch, total steps and the checkpoint cadence.

Why one place: preflight, both engines and the verl overrides must agree on these numbers, and two of them guard
verl traps. verl's loader drops the last partial batch (``DistributedSampler(drop_last=True)`` then a loader with
``drop_last=True`` on ``global_batch / dp`` rows per rank), so steps per epoch follow that rule here too, and the
native engine is given the same total. verl resumes wrongly from a checkpoint taken exactly at an epoch boundary
(bug #7401: the restored loader is exhausted, the run exits 0 without training), so the checkpoint cadence is chosen
so that no intermediate checkpoint ever lands on one.
"""

from __future__ import annotations

import math

from stages.lm.launch.torchrun import World  # noqa: F401  (where the run executes; moved with the torchrun launcher)


def steps_per_epoch(rows: int, global_batch: int, world_size: int) -> int:
    """Optimizer steps in one pass over ``rows``, as verl's sampler and loader count them."""
    per_rank_rows = rows // world_size
    per_rank_batch = global_batch // world_size
    return per_rank_rows // per_rank_batch if per_rank_batch else 0


def total_steps(per_epoch: int, epochs: float, max_steps: int | None) -> int:
    """Steps for ``epochs`` passes (fractions round up to a whole step), capped by ``max_steps``."""
    steps = max(1, math.ceil(per_epoch * epochs - 1e-9))
    return min(steps, max_steps) if max_steps else steps


def epochs_needed(total: int, per_epoch: int) -> int:
    """Whole epochs verl must be allowed to run to reach ``total`` steps."""
    return max(1, math.ceil(total / per_epoch))


def save_frequency(requested: int, per_epoch: int, total: int) -> int:
    """A checkpoint cadence close to ``requested`` whose checkpoints before the last step avoid every epoch boundary.

    The first multiple of ``f`` that is also a multiple of ``per_epoch`` is ``lcm(f, per_epoch)``; it must not come
    before the last step (which verl always saves, and from which nothing is resumed). The largest such ``f`` up to
    ``requested`` wins (checkpoints at least as often as asked); failing that, the smallest larger one. Returns -1
    (only the final checkpoint) when none qualifies, which happens only with one step per epoch.
    """
    def safe(f: int) -> bool:
        return math.lcm(f, per_epoch) >= total

    for f in range(min(requested, total), 0, -1):
        if safe(f):
            return f
    for f in range(requested + 1, total):
        if safe(f):
            return f
    return -1


def on_epoch_boundary(step: int, per_epoch: int, total: int) -> bool:
    """Would resuming at ``step`` hit verl bug #7401 (an exhausted loader with steps left to train)?"""
    return 0 < step < total and step % per_epoch == 0
