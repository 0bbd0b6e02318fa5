"""Where a native GRPO run is: which prompts come next, how many rollout steps are done, what was dropped.

Why its own small object: a resumed run must see exactly the prompts the uninterrupted run would have seen. The
order of epoch e is a permutation drawn from ``seed + e`` (the last partial batch of an epoch is dropped, as verl
does), so the whole position is (epoch, cursor); it rides in the engine's checkpoint next to the weights and the
optimizer, together with the rollout-step counter (optimizer steps can be fewer: a step whose groups were all
dropped makes no update).
"""

from __future__ import annotations

import random
from typing import Any

from stages.core.errors import InputError


class RolloutState:
    def __init__(self, num_prompts: int, prompts_per_step: int, seed: int) -> None:
        if num_prompts < prompts_per_step:
            raise InputError(
                f"{num_prompts} prompts fit max_prompt_length, fewer than prompts_per_step {prompts_per_step}: "
                "not one full rollout step (raise max_prompt_length or lower prompts_per_step)",
                "$.spec.params.max_prompt_length",
            )
        self.num_prompts, self.per_step, self.seed = num_prompts, prompts_per_step, seed
        self.epoch, self.cursor, self.step = 0, 0, 0
        self.dropped_groups, self.skipped_updates = 0, 0
        self._order = self._order_for(0)

    def _order_for(self, epoch: int) -> list[int]:
        order = list(range(self.num_prompts))
        random.Random(self.seed * 1_000_003 + epoch).shuffle(order)
        return order

    def next_prompts(self) -> list[int]:
        """Indices of the next step's prompts (a new epoch starts when the current one cannot fill a step)."""
        if self.cursor + self.per_step > self.num_prompts:
            self.epoch += 1
            self.cursor = 0
            self._order = self._order_for(self.epoch)
        chosen = self._order[self.cursor:self.cursor + self.per_step]
        self.cursor += self.per_step
        return chosen

    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "cursor": self.cursor, "step": self.step, "num_prompts": self.num_prompts,
                "per_step": self.per_step, "seed": self.seed, "dropped_groups": self.dropped_groups,
                "skipped_updates": self.skipped_updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        same = (state.get("num_prompts"), state.get("per_step"), state.get("seed"))
        if same != (self.num_prompts, self.per_step, self.seed):
            raise InputError(
                f"the checkpoint was written for (prompts, per step, seed) = {same}, this run has "
                f"{(self.num_prompts, self.per_step, self.seed)}: resume with the same prompts and params",
                "$.spec",
            )
        self.epoch, self.cursor, self.step = int(state["epoch"]), int(state["cursor"]), int(state["step"])
        self.dropped_groups = int(state.get("dropped_groups", 0))
        self.skipped_updates = int(state.get("skipped_updates", 0))
        self._order = self._order_for(self.epoch)
