"""Deterministic, resumable batching of a fixed list of groups (SFT-style data flows).

Why: exact resume needs the data position in the checkpoint. The order of epoch e is a permutation drawn from
``seed + e``, so the state is just (epoch, cursor) and a resumed run sees exactly the batches the uninterrupted
run would have. Every rank builds the same global batches; the trainer takes each rank's share.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from typing import Any

from stages.lm.engine.batch import Sample, group_tokens
from stages.lm.errors import LMInputError


class EpochBatches:
    """Global batches of groups: ``batch_groups`` groups per step, or as many groups as fit ``batch_tokens``."""

    def __init__(self, groups: Sequence[Sequence[Sample]], *, epochs: int = 1, seed: int = 0,
                 batch_groups: int = 8, batch_tokens: int | None = None, shuffle: bool = True) -> None:
        if not groups:
            raise LMInputError("the training data is empty")
        self.groups = list(groups)
        self.epochs, self.seed, self.shuffle = epochs, seed, shuffle
        self.batch_groups, self.batch_tokens = batch_groups, batch_tokens
        self.epoch, self.cursor = 0, 0
        self._order = self._order_for(0)

    def _order_for(self, epoch: int) -> list[int]:
        order = list(range(len(self.groups)))
        if self.shuffle:
            random.Random(self.seed * 1_000_003 + epoch).shuffle(order)
        return order

    def steps_per_epoch(self) -> int:
        if self.batch_tokens is None:
            return math.ceil(len(self.groups) / self.batch_groups)
        steps, acc = 0, 0
        for i in self._order_for(0):
            size = group_tokens(self.groups[i])
            if acc and acc + size > self.batch_tokens:
                steps, acc = steps + 1, 0
            acc += size
        return steps + (1 if acc else 0)

    def total_steps(self) -> int:
        return self.steps_per_epoch() * self.epochs

    def next_batch(self) -> list[list[Sample]] | None:
        """The next global batch, or None when all epochs are consumed."""
        if self.cursor >= len(self._order):
            if self.epoch + 1 >= self.epochs:
                return None
            self.epoch += 1
            self.cursor = 0
            self._order = self._order_for(self.epoch)
        batch: list[list[Sample]] = []
        tokens = 0
        while self.cursor < len(self._order):
            group = self.groups[self._order[self.cursor]]
            size = group_tokens(group)
            if self.batch_tokens is not None and batch and tokens + size > self.batch_tokens:
                break  # token budgets are upper bounds, so a multiple of micro_batch_tokens packs without waste
            batch.append(list(group))
            self.cursor += 1
            tokens += size
            if self.batch_tokens is None and len(batch) >= self.batch_groups:
                break
        return batch

    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "cursor": self.cursor, "num_groups": len(self.groups), "seed": self.seed}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("num_groups") != len(self.groups) or state.get("seed") != self.seed:
            raise LMInputError(
                f"the checkpoint was written for {state.get('num_groups')} groups with seed {state.get('seed')}, "
                f"this data has {len(self.groups)} groups with seed {self.seed}: resume with the same data"
            )
        self.epoch, self.cursor = int(state["epoch"]), int(state["cursor"])
        self._order = self._order_for(self.epoch)
