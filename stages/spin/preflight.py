"""Checks made before anything is written (the lifecycle's preflight hook): a bad manifest exits 2 at once.

Why here: a prompts file without ground truth or ground-truth responses, in the wrong schema, or a model folder that
is not one, would otherwise fail after the model is loaded and the first iteration has sampled; and a vLLM layout
that does not fit the node's GPUs, or a global batch that leaves some GPU without a pair, would fail or idle after
the queue wait (``study check`` runs this when the study is planned). Only light libraries are used (pyarrow,
``stages.envs``), so ``spin validate`` works on a login node.
"""

from __future__ import annotations

import json
from typing import Any

from stages.core.errors import InputError
from stages.core.stage import ResolvedInput
from stages.envs.sandbox.gate import WHERE as ISOLATION_WHERE
from stages.envs.sandbox.gate import grades_code, refusal
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


def check_resources(params: Any, resources: Any) -> None:
    """Several GPUs and nodes: every rank needs a pair per step, and the vLLM replicas must fit the batch node."""
    gpus, ranks = int(resources.gpus_per_node), int(resources.nodes) * max(1, int(resources.gpus_per_node))
    if params.global_batch_size < ranks:
        raise InputError(f"global_batch_size {params.global_batch_size} is smaller than the {ranks} training ranks "
                         f"({resources.nodes} node(s) x {max(1, gpus)}): each rank needs a pair per step",
                         "$.spec.params.global_batch_size")
    v = params.vllm
    if gpus and (v.tensor_parallel_size > gpus or gpus % v.tensor_parallel_size):
        raise InputError(f"vllm.tensor_parallel_size {v.tensor_parallel_size} does not divide the batch node's "
                         f"{gpus} GPU(s)", "$.spec.params.vllm.tensor_parallel_size")
    if gpus and v.data_parallel_size * v.tensor_parallel_size > gpus:
        raise InputError(f"vllm: {v.data_parallel_size} replica(s) x {v.tensor_parallel_size} GPU(s) is more than "
                         f"the batch node's {gpus} GPU(s)", "$.spec.params.vllm.data_parallel_size")


def preflight(spec: Any, inputs: dict[str, ResolvedInput]) -> None:
    params = spec.params
    check_resources(params, spec.resources)
    check_model(inputs["model"])
    if inputs["prompts"].ready:  # at plan time the collector has not written it yet
        rows = read_prompts(inputs["prompts"].path, params.chosen_source)
        if grades_code(r.data_source for r in rows) and (why := refusal(params.allow_unisolated_code)):
            raise InputError(why, ISOLATION_WHERE)
    if params.generation_backend == "vllm":
        from stages.lm.launch.vllm_server import VLLM_PYTHON_ENV, find_vllm_python

        if find_vllm_python() is None:
            raise InputError(f"generation_backend vllm needs a Python that imports vllm: this one (the cluster "
                             f"images) or ${VLLM_PYTHON_ENV}; use hf or auto here", "$.spec.params.generation_backend")
