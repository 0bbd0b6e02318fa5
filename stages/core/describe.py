"""Human- and machine-readable descriptions of a stage: its JSON Schema and its inputs, outputs and params.

``describe`` is the nf-core ``meta.yml`` of a stage: what it takes, what it writes, and every parameter with its
type, default, bounds and meaning, generated from the same models that validate manifests so it cannot drift.

Defaults come from the models themselves, not from the JSON Schema: a schema omits what a ``default_factory``
builds, and a nested block shows its class defaults there even where the stage's factory sets others (GRPO's
sampling block, say). What ``describe`` prints is what a manifest that leaves the field out gets.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticUndefined, to_jsonable_python

from stages.core.stage import StageDef


def model_defaults(model_cls: type[BaseModel]) -> dict[str, Any]:
    """The JSON value each field of ``model_cls`` takes when a manifest leaves it out (required fields absent)."""
    out: dict[str, Any] = {}
    for name, field in model_cls.model_fields.items():
        if field.default_factory is not None:
            if field.default_factory_takes_validated_data:
                continue  # depends on the other fields' values: no single default to show
            value = field.default_factory()  # type: ignore[call-arg]
        elif field.default is not PydanticUndefined:
            value = field.default
        else:
            continue
        out[field.alias or name] = value.model_dump(mode="json", by_alias=True) if isinstance(value, BaseModel) \
            else to_jsonable_python(value)
    return out


def json_schema(stage: StageDef) -> dict[str, Any]:
    schema = stage.manifest_cls.model_json_schema(by_alias=True)
    schema["$id"] = f"forgetting-llms/manifest/v1/{stage.name}"
    schema["title"] = f"{stage.name} manifest"
    return schema


def _type_name(info: dict[str, Any]) -> str:
    if "enum" in info:
        return " | ".join(json.dumps(v) for v in info["enum"])
    if "const" in info:
        return json.dumps(info["const"])
    if "anyOf" in info:
        return " | ".join(_type_name(x) for x in info["anyOf"])
    if info.get("type") == "array":
        return f"list[{_type_name(info.get('items', {}))}]"
    if "$ref" in info:
        return info["$ref"].rsplit("/", 1)[-1]
    return str(info.get("type", "any"))


def params_table(stage: StageDef) -> list[dict[str, Any]]:
    schema = stage.params.model_json_schema()
    defs = schema.get("$defs", {})
    rows = []

    def walk(props: dict[str, Any], prefix: str, defaults: dict[str, Any]) -> None:
        for name, info in props.items():
            ref = info.get("$ref") or (info.get("allOf") or [{}])[0].get("$ref")
            if ref and "properties" in defs.get(ref.rsplit("/", 1)[-1], {}):
                block = defs[ref.rsplit("/", 1)[-1]]["properties"]
                nested = defaults.get(name)
                if not isinstance(nested, dict):  # a required block: its own fields' defaults
                    nested = {k: v["default"] for k, v in block.items() if "default" in v}
                walk(block, f"{prefix}{name}.", nested)
                continue
            bounds = {k: info[k] for k in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum") if k in info}
            rows.append(
                {
                    "name": prefix + name,
                    "type": _type_name(info),
                    "default": defaults.get(name, info.get("default")),
                    "bounds": bounds,
                    "help": info.get("description", ""),
                }
            )

    walk(schema.get("properties", {}), "", model_defaults(stage.params))
    return rows


def describe(stage: StageDef) -> dict[str, Any]:
    return {
        "stage": stage.name,
        "description": stage.description,
        "engines": list(stage.engines),
        "default_engine": stage.default_engine(),
        "inputs": {
            n: {"kinds": [k.value for k in d.kinds], "required": d.required, "help": d.help}
            for n, d in stage.inputs.items()
        },
        "variadic_inputs": stage.variadic_inputs.value if stage.variadic_inputs else None,
        "outputs": {n: {"kind": d.kind.value, "path": d.path, "required": d.required, "help": d.help}
                    for n, d in stage.outputs.items()},
        "params": params_table(stage),
    }


def describe_text(stage: StageDef) -> str:
    d = describe(stage)
    lines = [f"{d['stage']}: {d['description']}", "", f"engines: {', '.join(d['engines'])} "
             f"(default {d['default_engine']})", "", "inputs:"]
    for n, i in d["inputs"].items():
        req = "required" if i["required"] else "optional"
        lines.append(f"  {n:<14} {'/'.join(i['kinds']):<14} {req:<9} {i['help']}")
    if d["variadic_inputs"]:
        lines.append(f"  <any name>     {d['variadic_inputs']:<14} optional  any number of these")
    lines += ["", "outputs:"]
    for n, o in d["outputs"].items():
        req = "" if o["required"] else " (when applicable)"
        lines.append(f"  {n:<14} {o['kind']:<14} {o['path']:<22} {o['help']}{req}")
    lines += ["", "params (spec.params):"]
    for p in d["params"]:
        bounds = " ".join(f"{k.replace('imum', '').replace('exclusive', 'x')}={v}" for k, v in p["bounds"].items())
        lines.append(f"  {p['name']:<28} {p['type']:<30} default={json.dumps(p['default'])} {bounds}")
        if p["help"]:
            lines.append(f"      {p['help']}")
    return "\n".join(lines)
