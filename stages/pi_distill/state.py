"""Where a π-Distill run is: the held-out split, which training prompts come next, and what was done so far.

Why its own object: a resumed run must see exactly the prompts, samples and held-out slices the uninterrupted run
would have seen. The held-out split is fixed by the prompt set alone (the same slice for every seed, so runs
compare on the same prompts); the training order of epoch e is a permutation drawn from ``(seed, e)`` (the last
partial batch of an epoch is dropped); sampling seeds derive from ``(seed, step)``. So the whole position is
(epoch, cursor, step), which rides inside the engine's checkpoint next to the weights, the optimizer and the RNG
(one atomic folder). ``write_state_file`` also leaves a small JSON beside the checkpoints, written atomically after
each one, saying where the run is for people and the conductor.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
from pathlib import Path
from typing import Any

from stages.core.errors import InputError

STATE_FILE = "pi_distill_state.json"


def derived_seed(*parts: Any) -> int:
    """A 31-bit seed from any parts: independent streams per (seed, step, purpose)."""
    digest = hashlib.sha256(":".join(str(p) for p in ("pi-distill", *parts)).encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


def heldout_split(num_prompts: int, fraction: float, keep_train: int) -> tuple[list[int], list[int]]:
    """(training positions, held-out positions): ceil(fraction x n) prompts (at least 1) held out, chosen by a
    fixed permutation of the prompt set (independent of the run's seed)."""
    n_held = max(1, math.ceil(fraction * num_prompts))
    if num_prompts - n_held < keep_train:
        raise InputError(
            f"{num_prompts} usable prompts minus {n_held} held out (heldout_fraction {fraction}) leaves fewer than "
            f"prompts_per_step {keep_train}: not one full rollout batch", "$.spec.params.prompts_per_step")
    order = list(range(num_prompts))
    random.Random(derived_seed("heldout", num_prompts)).shuffle(order)
    return sorted(order[n_held:]), sorted(order[:n_held])


def total_steps(num_train: int, prompts_per_step: int, epochs: float, max_steps: int | None) -> int:
    if max_steps is not None:
        return max_steps
    return max(1, math.floor(epochs * (num_train // prompts_per_step)))


class RolloutState:
    """The data position and counters of a run; ``state_dict`` / ``load_state_dict`` for the engine checkpoint."""

    def __init__(self, num_train: int, prompts_per_step: int, seed: int) -> None:
        self.num_train, self.per_step, self.seed = num_train, prompts_per_step, seed
        self.epoch, self.cursor, self.step = 0, 0, 0
        self.dropped_groups, self.skipped_updates, self.optimizer_steps = 0, 0, 0
        self._order = self._order_for(0)

    def _order_for(self, epoch: int) -> list[int]:
        order = list(range(self.num_train))
        random.Random(derived_seed("order", self.seed, epoch)).shuffle(order)
        return order

    def next_prompts(self) -> list[int]:
        """Indices (into the training prompts) of the next step; a new epoch starts when this one cannot fill it."""
        if self.cursor + self.per_step > self.num_train:
            self.epoch += 1
            self.cursor = 0
            self._order = self._order_for(self.epoch)
        chosen = self._order[self.cursor:self.cursor + self.per_step]
        self.cursor += self.per_step
        return chosen

    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "cursor": self.cursor, "step": self.step, "num_train": self.num_train,
                "per_step": self.per_step, "seed": self.seed, "dropped_groups": self.dropped_groups,
                "skipped_updates": self.skipped_updates, "optimizer_steps": self.optimizer_steps}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        same = (state.get("num_train"), state.get("per_step"), state.get("seed"))
        if same != (self.num_train, self.per_step, self.seed):
            raise InputError(
                f"the checkpoint was written for (training prompts, per step, seed) = {same}, this run has "
                f"{(self.num_train, self.per_step, self.seed)}: resume with the same prompts and params", "$.spec")
        self.epoch, self.cursor, self.step = int(state["epoch"]), int(state["cursor"]), int(state["step"])
        self.dropped_groups = int(state.get("dropped_groups", 0))
        self.skipped_updates = int(state.get("skipped_updates", 0))
        self.optimizer_steps = int(state.get("optimizer_steps", 0))
        self._order = self._order_for(self.epoch)


def write_state_file(folder: Path, state: RolloutState, checkpoint: Path, total: int) -> Path:
    """``<checkpoints>/pi_distill_state.json``: the last checkpoint and the position it holds (temp file + rename)."""
    path = folder / STATE_FILE
    tmp = folder / f".{STATE_FILE}.tmp"
    record = {**state.state_dict(), "total_steps": total, "checkpoint": checkpoint.name}
    with tmp.open("w", encoding="utf-8") as fh:
        json.dump(record, fh, indent=1, sort_keys=True)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return path
