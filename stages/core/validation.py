"""Loading and validating a manifest: every fault becomes a ``ManifestError`` naming its JSON path.

Nothing here writes anything, so a bad manifest leaves the output folder untouched (exit code 2).
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError

from stages.core import storage
from stages.core.errors import ManifestError
from stages.core.manifest import SCHEMA_ID, ManifestBase
from stages.core.stage import StageDef


def json_path(loc: tuple[Any, ...]) -> str:
    out = "$"
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif isinstance(part, str) and part.isidentifier():
            out += f".{part}"
        else:
            out += f"[{json.dumps(str(part))}]"
    return out


def _explain(err: dict[str, Any]) -> str:
    msg = err["msg"]
    if err["type"] == "extra_forbidden":
        return "unknown key (not allowed here; check its spelling against `describe`)"
    if err["type"] == "missing":
        return "required key is missing"
    if "input" in err and err["type"] not in ("model_type", "dict_type"):
        shown = json.dumps(err["input"], default=str)
        if len(shown) > 80:
            shown = shown[:77] + "..."
        return f"{msg} (got {shown})"
    return msg


def validation_error(e: ValidationError) -> ManifestError:
    errs = e.errors(include_url=False)
    first = errs[0]
    lines = [f"{json_path(x['loc'])}: {_explain(x)}" for x in errs]
    err = ManifestError(_explain(first), json_path(first["loc"]))
    if len(lines) > 1:
        err.message = _explain(first) + "\n  also: " + "\n  also: ".join(lines[1:])
    return err


def parse_json(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise ManifestError(f"{what} is malformed JSON: {e.msg} at line {e.lineno} column {e.colno}") from None


def load_manifest(stage: StageDef, uri: str) -> ManifestBase:
    try:
        text = storage.read_text(uri)
    except storage.StorageError as e:
        raise ManifestError(f"cannot read the manifest: {e}") from None
    return validate_manifest(stage, parse_json(text, f"manifest {uri!r}"))


def validate_manifest(stage: StageDef, data: Any) -> ManifestBase:
    """A parsed manifest checked against the stage's model: schema id, stage name, params, engine."""
    if not isinstance(data, dict):
        raise ManifestError("a manifest must be a JSON object")
    if data.get("schema") not in (None, SCHEMA_ID):
        raise ManifestError(f"unknown manifest schema {data.get('schema')!r}; expected {SCHEMA_ID!r}", "$.schema")
    if "stage" in data and data["stage"] != stage.name:
        raise ManifestError(
            f"this manifest is for stage {data['stage']!r}, but this is the {stage.name!r} stage", "$.stage"
        )
    try:
        manifest = stage.manifest_cls.model_validate(data)
    except ValidationError as e:
        raise validation_error(e) from None
    engine = manifest.spec.runtime.engine
    if engine is not None and engine not in stage.engines:
        raise ManifestError(
            f"unknown engine {engine!r} for {stage.name}; choose one of {', '.join(stage.engines)}",
            "$.spec.runtime.engine",
        )
    try:
        storage.expand(manifest.spec.output_dir)
    except storage.StorageError as e:
        raise ManifestError(str(e), "$.spec.output_dir") from None
    return manifest
