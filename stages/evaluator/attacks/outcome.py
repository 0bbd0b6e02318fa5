"""What one attack on one behaviour returns, and the seed it runs with.

The seed is derived from the suite's seed, the method and the behaviour id only, so a behaviour's attack is the same
whatever ran before it in the process: a run resumed after a preemption equals an uninterrupted one.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass


@dataclass
class Outcome:
    adversarial_prompt: str  # the whole user message the model is attacked with
    loss: float | None  # the target loss of the best prompt
    steps: int  # optimisation steps (GCG) or generations (AutoDAN) run


def behaviour_seed(seed: int, method: str, behaviour_id: str) -> int:
    digest = hashlib.sha256(f"{seed}:{method}:{behaviour_id}".encode()).hexdigest()
    return int(digest[:8], 16)
