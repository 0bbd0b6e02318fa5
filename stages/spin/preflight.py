"""Checks made before anything is written (the lifecycle's preflight hook): a bad manifest exits 2 at once.

Why here: a prompts file without ground truth or ground-truth responses, in the wrong schema, or a model folder that
is not one, would otherwise fail after the model is loaded and the first iteration has sampled; and a run given
several GPUs would fail at its start, after its queue wait, since the stage runs on a CPU or one GPU until its
torchrun path is built (``study check`` refuses such a run when the study is planned). Only light
libraries are used (pyarrow, ``stages.envs``), so ``spin validate`` works on a login node.
"""

from __future__ import annotations

import json
from typing import Any

from stages.core.errors import InputError, NotImplementedYet
from stages.core.stage import ResolvedInput
from stages.spin.prompts import read_prompts


def check_model(model: ResolvedInput) -> None:
    folder = model.path
    where = "$.spec.inputs.model"
    if not (folder / "config.json").is_file():
        raise InputError(f"model folder {folder} has no config.json: not a Hugging Face model folder", where)
    try:
        json.loads((folder / "config.json").read_text())
    except ValueError as e:
        raise InputError(f"model folder {folder}: config.json is not JSON ({e})", where) from None
    if not (folder / "tokenizer_config.json").is_file():
        raise InputError(f"model folder {folder} has no tokenizer_config.json (SPIN tokenizes with the model's "
                         "own tokenizer and chat template)", where)


def check_resources(resources: Any) -> None:
    if resources.nodes > 1 or resources.gpus_per_node > 1:
        raise NotImplementedYet(
            f"spin on {resources.nodes} node(s) x {resources.gpus_per_node} GPUs (needs a torchrun launcher; runs on "
            "a CPU or one GPU): give SELF gpus_per_node: 1 and nodes: 1")


def preflight(spec: Any, inputs: dict[str, ResolvedInput]) -> None:
    params = spec.params
    check_resources(spec.resources)
    check_model(inputs["model"])
    if inputs["prompts"].ready:  # at plan time the collector has not written it yet
        read_prompts(inputs["prompts"].path, params.chosen_source)
    if params.generation_backend == "vllm":
        import importlib.util

        if importlib.util.find_spec("vllm") is None:
            raise InputError("generation_backend vllm needs the `vllm` package (in the cluster images); use hf or "
                             "auto here", "$.spec.params.generation_backend")
