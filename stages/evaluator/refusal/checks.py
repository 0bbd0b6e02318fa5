"""What the refusal-direction suite checks before anything runs (the evaluator's preflight calls this): its
instruction rows are there and enough, a base is named at most once, and a ``base_direction`` file exists, is one,
has the evaluated model's width and depth, and was made from the same instruction sets and settings. Files are
looked at (config.json, the safetensors header, the benchmark rows), never loaded into a model. In a plan-time check
(``<stage> check``: inputs carry no digests) a file not written yet is pending, since the baseline's run writes it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from stages.core.errors import InputError, InputPending
from stages.evaluator.refusal import store
from stages.evaluator.refusal.data import sets_for, settings_of

WHERE = "$.spec.params.refusal_direction.base_direction"


def _shape(folder: Path) -> tuple[int | None, int | None]:
    cfg = json.loads((folder / "config.json").read_text())
    cfg = cfg.get("text_config", cfg)
    return cfg.get("num_hidden_layers"), cfg.get("hidden_size")


def check(spec: Any, inputs: dict[str, Any]) -> None:
    p = spec.params.refusal_direction
    root = inputs["benchmarks"].path if "benchmarks" in inputs else None
    sets = sets_for(p, str(root) if root else None)
    model_ready = "model" in inputs and inputs["model"].ready
    if "base_model" in inputs and p.base_direction:
        raise InputError("refusal_direction suite: give the base as base_direction (a file of the baseline's run) or "
                         "as the base_model input, not both", WHERE)
    if "base_model" in inputs and inputs["base_model"].ready and model_ready:
        a, b = _shape(Path(inputs["model"].path)), _shape(Path(inputs["base_model"].path))
        if a != b:
            raise InputError(f"refusal_direction suite: model and base_model differ in (layers, width): {a} against "
                             f"{b}", "$.spec.inputs.base_model")
    if not p.base_direction:
        return
    path = Path(p.base_direction)
    if not path.is_file():
        if "model" in inputs and not inputs["model"].digest:  # a plan-time check: the baseline has not run yet
            raise InputPending("refusal_direction.base_direction", str(path.parent))
        raise InputError(f"refusal_direction.base_direction {path} does not exist (the SAFE baseline's run writes "
                         f"{store.FILE_NAME} into its output folder)", WHERE)
    try:
        shapes, info = store.header(path)
    except ValueError as e:
        raise InputError(f"refusal_direction.base_direction: {e}", WHERE) from None
    layers, _, width = (shapes["candidates"] + [None, None, None])[:3]
    if model_ready:
        want_layers, want_width = _shape(Path(inputs["model"].path))
        if (layers, width) != (want_layers, want_width) or shapes["direction"] != [want_width]:
            raise InputError(f"refusal_direction.base_direction {path} is for {layers} layers of width {width}; the "
                             f"model has {want_layers} of width {want_width}", WHERE)
    want = settings_of(p, spec.runtime.thinking)
    differ = {k: (info.get("settings", {}).get(k), v) for k, v in want.items() if info.get("settings", {}).get(k) != v}
    if differ:
        listed = ", ".join(f"{k}: file {a!r}, here {b!r}" for k, (a, b) in differ.items())
        raise InputError(f"refusal_direction.base_direction {path} was made with other settings ({listed})", WHERE)
    if info.get("digests") != sets.digests:
        raise InputError(f"refusal_direction.base_direction {path} was made from other instruction rows (digests "
                         "differ: another benchmarks folder)", WHERE)
