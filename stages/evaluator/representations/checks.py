"""What the representations suite checks before anything runs (the evaluator's preflight calls this): the benchmark
rows its text sets and probe read are there, the two checkpoints have the same number of layers and width, and both
hold safetensors weights when the weight-delta analysis is on. Files are looked at, never loaded.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from stages.core.errors import InputError
from stages.evaluator.tasks.fllm_loaders import BenchmarkDataMissing, find_file, humaneval_rows_file

SET_FILES = {"math": "gsm8k", "qa": "nq_open", "general": "xstest"}


def check(params: Any, inputs: dict[str, Any]) -> None:
    p = params.representations
    root = inputs["benchmarks"].path if "benchmarks" in inputs else None
    keys = ["nq_open"] + [SET_FILES[s] for s in p.sets if s in SET_FILES]
    for key in dict.fromkeys(keys):
        try:
            find_file(root, key)
        except BenchmarkDataMissing as e:
            raise InputError(f"representations suite: {e}", "$.spec.inputs.benchmarks") from None
    if "code" in p.sets:
        try:
            humaneval_rows_file()
        except BenchmarkDataMissing as e:
            raise InputError(f"representations suite, set code: {e}", "$.spec.params.representations.sets") from None
    _same_shape(inputs)
    if not p.weight_delta:
        return
    for name in ("model", "base_model"):
        if name in inputs and inputs[name].ready and not any(Path(inputs[name].path).glob("*.safetensors")):
            raise InputError(f"representations suite: {inputs[name].path} has no safetensors weights (the weight-"
                             "delta analysis reads only safetensors; set representations.weight_delta false)",
                             f"$.spec.inputs.{name}")


def _same_shape(inputs: dict[str, Any]) -> None:
    """The two checkpoints have the same layers and width (their config.json), or nothing can be compared."""
    if not all(n in inputs and inputs[n].ready for n in ("model", "base_model")):
        return
    keys = ("num_hidden_layers", "hidden_size")
    shapes = {}
    for name in ("model", "base_model"):
        cfg = json.loads((Path(inputs[name].path) / "config.json").read_text())
        cfg = cfg.get("text_config", cfg)
        shapes[name] = tuple(cfg.get(k) for k in keys)
    if shapes["model"] != shapes["base_model"]:
        raise InputError(f"representations suite: model and base_model differ in ({', '.join(keys)}): "
                         f"{shapes['model']} against {shapes['base_model']}", "$.spec.inputs.base_model")
