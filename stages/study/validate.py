"""Validate a planned manifest against its stage's own declaration, in process, before anything is written.

Why import the declarations rather than call ``<stage> validate``: the declarations (``stages/<s>/stage.py`` and
``params.py``) import only pydantic and the core, so checking hundreds of manifests takes milliseconds instead of a
process start each; and ``validate`` also resolves inputs, which cannot work at planning time (upstream runs have
not produced their outputs yet). The conductor never imports a stage's ``run`` code. The result is the manifest
normalised by the stage's model (every default written out), so the record a stage writes later has exactly the
same spec and "already done" can be decided by comparing the two.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from stages.study.errors import StudyError
from stages.study.merge import deep_merge


def normalise(manifest: dict[str, Any]) -> dict[str, Any]:
    """Return the manifest as the stage's model reads it, or raise ``StudyError`` naming the run and JSON path."""
    from stages.core.validation import validation_error
    from stages.registry import BY_NAME, load_stage

    stage_name = manifest["stage"]
    run_id = manifest["run_id"]
    if stage_name not in BY_NAME:
        return manifest  # an extra run's own command validates its manifest when it runs
    stage = load_stage(stage_name)
    # Layer the study's partial params over the stage's defaults first: pydantic would rebuild a nested block the
    # study only touches (``optim: {lr: ...}``) from the block's class defaults, losing the stage's own (SPIN's
    # linear schedule, GRPO's constant one).
    try:
        defaults = stage.params().model_dump(mode="json", by_alias=True)
    except ValidationError:
        defaults = {}
    manifest = dict(manifest, spec=dict(manifest["spec"], params=deep_merge(defaults, manifest["spec"]["params"])))
    try:
        model = stage.manifest_cls.model_validate(manifest)
    except ValidationError as e:
        err = validation_error(e)
        raise StudyError(f"{stage_name} manifest is invalid: {err}", f"run {run_id}") from None
    engine = model.spec.runtime.engine
    if engine is not None and engine not in stage.engines:
        raise StudyError(f"unknown engine {engine!r} for {stage_name}; choose from {', '.join(stage.engines)}",
                         f"run {run_id}")
    for name in model.spec.inputs:
        if name not in stage.inputs and stage.variadic_inputs is None:
            raise StudyError(f"{stage_name} takes no input {name!r} (it takes: {', '.join(stage.inputs)})",
                             f"run {run_id}")
    for name, decl in stage.inputs.items():
        if decl.required and name not in model.spec.inputs:
            raise StudyError(f"{stage_name} needs input {name!r}: {decl.help}", f"run {run_id}")
    return model.model_dump(mode="json", by_alias=True)
