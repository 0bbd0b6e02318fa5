"""The step arithmetic both engines share, and the checkpoint cadence that keeps verl off epoch boundaries."""

from __future__ import annotations

import math

import pytest

from stages.sft_trainer import plan


def test_steps_per_epoch_drops_the_last_partial_batch_like_verl():
    assert plan.steps_per_epoch(rows=64, global_batch=8, world_size=1) == 8
    assert plan.steps_per_epoch(rows=70, global_batch=8, world_size=1) == 8
    # 2 ranks: each rank gets floor(70 / 2) = 35 rows in batches of 4 -> 8 steps
    assert plan.steps_per_epoch(rows=70, global_batch=8, world_size=2) == 8
    assert plan.steps_per_epoch(rows=7, global_batch=8, world_size=1) == 0


def test_total_steps_from_epochs_and_cap():
    assert plan.total_steps(10, 2.0, None) == 20
    assert plan.total_steps(10, 0.25, None) == 3  # fractions round up to a whole step
    assert plan.total_steps(10, 2.0, 7) == 7
    assert plan.epochs_needed(7, 10) == 1 and plan.epochs_needed(20, 10) == 2 and plan.epochs_needed(21, 10) == 3


@pytest.mark.parametrize("per_epoch", [1, 2, 3, 7, 8, 9, 12, 29, 64, 100])
@pytest.mark.parametrize("epochs", [1, 2, 3, 4])
@pytest.mark.parametrize("requested", [1, 3, 4, 10, 50])
def test_save_frequency_never_checkpoints_on_an_epoch_boundary(per_epoch, epochs, requested):
    total = per_epoch * epochs
    f = plan.save_frequency(requested, per_epoch, total)
    if f == -1:
        assert per_epoch == 1 and total > 1  # only one step per epoch leaves no safe cadence
        return
    saves = range(f, total, f)  # verl saves every f steps; the final step is saved and never resumed from
    assert not any(plan.on_epoch_boundary(s, per_epoch, total) for s in saves)
    unsafe = [g for g in range(1, total + 1) if any(plan.on_epoch_boundary(s, per_epoch, total) for s in range(g, total, g))]
    if f <= requested:  # the largest safe cadence not above the request
        assert all(g in unsafe for g in range(f + 1, min(requested, total) + 1))
    else:  # none at or below the request is safe: the nearest larger one
        assert all(g in unsafe for g in range(1, f))


def test_save_frequency_examples():
    assert plan.save_frequency(4, 8, 16) == 3  # 4 divides the 8-step epoch: nudged to 3 (saves 3, 6, 9, 12, 15)
    assert plan.save_frequency(50, 29, 58) == 50
    assert plan.save_frequency(3, 9, 9) == 3  # one epoch: only the final step is a boundary
    assert plan.save_frequency(1, 8, 16) == 3  # every cadence <= 1 divides the epoch: the nearest safe larger one
    assert plan.save_frequency(5, 1, 4) == 4  # one step per epoch: only the final step can be saved
    assert math.lcm(3, 8) >= 16
