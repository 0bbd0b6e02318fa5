"""Checks run before anything is written (the lifecycle's preflight hook): bad input exits 2 with nothing written.

Why here: a prompts file in the wrong schema or without privileged information, or a prompt set too small for one
rollout batch after the held-out slice, would otherwise surface only after the model loaded (minutes on a GPU
node). Parameter bounds (alpha in [0, 1], beta >= 0, batch shapes) are the params model's; what needs the input
files is checked here.
"""

from __future__ import annotations

import math
from typing import Any

from stages.core.errors import InputError
from stages.core.stage import ResolvedInput
from stages.pi_distill.prompts import read_prompts


def preflight(spec: Any, inputs: dict[str, ResolvedInput]) -> None:
    p = spec.params
    folder = inputs["model"].path
    if not (folder / "config.json").is_file():
        raise InputError(f"{folder} is not a Hugging Face model folder (no config.json)", "$.spec.inputs.model")
    rows = read_prompts(inputs["prompts"].path, p.privileged_source, p.privileged_template)
    held = max(1, math.ceil(p.heldout_fraction * len(rows)))
    if len(rows) - held < p.prompts_per_step:
        raise InputError(
            f"the prompt set has {len(rows)} prompts; with {held} held out for the student's evaluation "
            f"(heldout_fraction {p.heldout_fraction}) fewer than prompts_per_step {p.prompts_per_step} remain to "
            "train on: lower prompts_per_step or heldout_fraction, or give more prompts", "$.spec.params")
