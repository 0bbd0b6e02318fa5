"""Checks run before anything is written (the lifecycle's preflight hook): bad input exits 2 with nothing written.

Why here: a prompts file in the wrong schema or without privileged information, or a prompt set too small for one
rollout batch after the held-out slice, would otherwise surface only after the model loaded (minutes on a GPU
node). Parameter bounds (alpha in [0, 1], beta >= 0, batch shapes) are the params model's; what needs the input
files is checked here. Settings the native run cannot honour yet (several GPUs or nodes, the vllm generation backend)
are refused here too, so ``study check`` catches them when the study is planned, not after a queue wait.
"""

from __future__ import annotations

import math
from typing import Any

from stages.core.errors import InputError, NotImplementedYet
from stages.core.stage import ResolvedInput
from stages.pi_distill.prompts import read_prompts


def check_unbuilt(params: Any, resources: Any) -> None:
    if params.generation_backend != "hf":
        raise NotImplementedYet("pi-distill with the vllm generation backend (needs a stages.lm vLLM backend that "
                                "takes updated weights between steps)")
    if resources.nodes > 1 or resources.gpus_per_node > 1:
        raise NotImplementedYet(
            f"pi-distill on {resources.nodes} node(s) x {resources.gpus_per_node} GPUs (needs a torchrun launcher; "
            "the native run uses one process: a CPU or one GPU): give PI gpus_per_node: 1 and nodes: 1")


def preflight(spec: Any, inputs: dict[str, ResolvedInput]) -> None:
    p = spec.params
    check_unbuilt(p, spec.resources)
    folder = inputs["model"].path
    if not (folder / "config.json").is_file():
        raise InputError(f"{folder} is not a Hugging Face model folder (no config.json)", "$.spec.inputs.model")
    if not inputs["prompts"].ready:  # at plan time the collector has not written it yet
        return
    rows = read_prompts(inputs["prompts"].path, p.privileged_source, p.privileged_template)
    held = max(1, math.ceil(p.heldout_fraction * len(rows)))
    if len(rows) - held < p.prompts_per_step:
        raise InputError(
            f"the prompt set has {len(rows)} prompts; with {held} held out for the student's evaluation "
            f"(heldout_fraction {p.heldout_fraction}) fewer than prompts_per_step {p.prompts_per_step} remain to "
            "train on: lower prompts_per_step or heldout_fraction, or give more prompts", "$.spec.params")
