"""Resolving a manifest's inputs: direct URIs are checked to exist and to be of a declared kind; links to
upstream manifests must point at a run that succeeded and at an output whose digest still matches.
"""

from __future__ import annotations

from stages.core import storage
from stages.core.artifacts import ArtifactKind, ArtifactRef
from stages.core.digest import digest
from stages.core.errors import ManifestError
from stages.core.manifest import SCHEMA_ID, RunState
from stages.core.stage import InputDecl, ResolvedInput, StageDef
from stages.core.validation import parse_json


def _declared(stage: StageDef, name: str) -> InputDecl:
    if name in stage.inputs:
        return stage.inputs[name]
    if stage.variadic_inputs is not None:
        return InputDecl(kinds=(stage.variadic_inputs,), help="")
    known = ", ".join(stage.inputs) or "none"
    raise ManifestError(f"unknown input {name!r}; {stage.name} takes: {known}", f"$.spec.inputs.{name}")


def read_upstream(ref: ArtifactRef, path: str) -> dict:
    """The upstream run's record that a ``from`` link points at (must be a forgetting-llms manifest)."""
    manifest_uri, _ = ref.from_parts()
    try:
        text = storage.read_text(manifest_uri)
    except storage.StorageError as e:
        raise ManifestError(f"cannot read the upstream manifest: {e}", path) from None
    up = parse_json(text, f"upstream manifest {manifest_uri!r}")
    if not isinstance(up, dict) or up.get("schema") != SCHEMA_ID:
        raise ManifestError(f"{manifest_uri!r} is not a forgetting-llms manifest", path)
    return up


def upstream_output(up: dict, out_name: str, path: str) -> tuple[str, ArtifactKind, str]:
    """(uri, kind, recorded digest) of one output of a succeeded upstream record."""
    out = (up.get("outputs") or {}).get(out_name)
    if not out:
        names = ", ".join(sorted(up.get("outputs") or {})) or "none"
        raise ManifestError(f"upstream run {up.get('run_id')!r} has no output {out_name!r} (it has: {names})", path)
    try:
        kind = ArtifactKind(out.get("kind"))
    except ValueError:
        raise ManifestError(f"upstream output {out_name!r} has an unknown kind {out.get('kind')!r}", path) from None
    return out["uri"], kind, out.get("digest") or ""


def _follow(ref: ArtifactRef, path: str) -> tuple[str, ArtifactKind, str]:
    up = read_upstream(ref, path)
    state = (up.get("status") or {}).get("state")
    if state != RunState.succeeded.value:
        raise ManifestError(
            f"upstream run {up.get('run_id')!r} ({up.get('stage')}) is {state!r}, not 'succeeded'; run it first", path
        )
    return upstream_output(up, ref.from_parts()[1], path)


def present_uri(stage: StageDef, decl: InputDecl, name: str, uri: str, kind: ArtifactKind, path: str) -> str:
    """The expanded URI of an input that exists and is of a kind the stage declares, else ``ManifestError``."""
    try:
        uri = storage.expand(uri)
        present = storage.exists(uri)
    except (storage.StorageError, ValueError, OSError) as e:
        raise ManifestError(f"cannot read input {name!r}: {e}", path) from None
    if not present:
        raise ManifestError(f"cannot read input {name!r}: {uri} does not exist", path)
    if kind not in decl.kinds:
        want = " or ".join(k.value for k in decl.kinds)
        raise ManifestError(f"input {name!r} is a {kind.value}, but {stage.name} needs {want}", path + ".kind")
    return uri


def check_required(stage: StageDef, inputs: dict[str, ArtifactRef]) -> None:
    for name, decl in stage.inputs.items():
        if decl.required and name not in inputs:
            kinds = "/".join(k.value for k in decl.kinds)
            raise ManifestError(f"missing required input {name!r} ({kinds}): {decl.help}", "$.spec.inputs")


def resolve_inputs(stage: StageDef, inputs: dict[str, ArtifactRef]) -> dict[str, ResolvedInput]:
    check_required(stage, inputs)
    resolved: dict[str, ResolvedInput] = {}
    for name, ref in inputs.items():
        path = f"$.spec.inputs.{name}"
        decl = _declared(stage, name)
        expected = ref.digest
        if ref.from_ is not None:
            uri, kind, recorded = _follow(ref, path + ".from")
            expected = expected or recorded
        else:
            assert ref.uri is not None and ref.kind is not None
            uri, kind = ref.uri, ref.kind
        uri = present_uri(stage, decl, name, uri, kind, path)
        actual = digest(uri)
        if expected and expected != actual:
            raise ManifestError(
                f"input {name!r} changed since it was recorded: digest {actual} != {expected}", path + ".digest"
            )
        resolved[name] = ResolvedInput(name=name, uri=uri, kind=kind, digest=actual)
    return resolved
