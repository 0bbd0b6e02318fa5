"""Plan-time checks of manifests (``<stage> check``): validate and preflight before the upstream runs exist.

Why a separate path from ``validate``: ``validate`` resolves every input for real (upstream runs must have succeeded,
digests are computed), which is right just before a run and impossible when a study is planned, since a trainer's
data comes from a collector run that has not happened yet. Here a link to an upstream run that has not succeeded
becomes a *pending* input (``ResolvedInput.upstream``); the stage's own preflight runs every check that does not
need that file, and says which checks wait for it. Direct inputs (models, datasets, benchmark rows) must exist and be
of a declared kind; their digests are not computed (a 14B model would take minutes), the run does that.

Nothing is written. Each manifest gives one ``CheckResult``; one process checks many manifests, so a study of
hundreds of runs costs one interpreter start per stage (inside the stage's image when the conductor has one).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from stages.core import storage
from stages.core.artifacts import ArtifactKind, ArtifactRef
from stages.core.errors import InputPending, ManifestError, NotImplementedYet
from stages.core.inputs import _declared, check_required, present_uri, read_upstream, upstream_output
from stages.core.manifest import RunState
from stages.core.stage import ResolvedInput, StageDef
from stages.core.validation import validate_manifest


@dataclass
class CheckResult:
    run_id: str
    ok: bool
    problem: str | None = None  # the first fault, naming its JSON path
    deferred: list[str] = field(default_factory=list)  # checks that wait for an upstream run's output

    def to_json(self) -> str:
        return json.dumps(asdict(self))


def _upstream(ref: ArtifactRef, path: str) -> dict[str, Any] | None:
    """The upstream record, or None while the upstream run has not written one."""
    try:
        if not storage.exists(storage.expand(ref.from_parts()[0])):
            return None
    except (storage.StorageError, ValueError, OSError) as e:
        raise ManifestError(f"cannot read the upstream manifest: {e}", path) from None
    return read_upstream(ref, path)


def _run_name(up: dict[str, Any] | None, ref: ArtifactRef) -> str:
    """The upstream run's id: from its record, else from the conductor's layout ``<run_dir>/out/manifest.json``."""
    if up and up.get("run_id"):
        return str(up["run_id"])
    parts = ref.from_parts()[0].rstrip("/").split("/")
    return parts[-3] if len(parts) >= 3 and parts[-2:] == ["out", "manifest.json"] else "/".join(parts)


def _pending_kind(stage: StageDef, name: str) -> ArtifactKind:
    return _declared(stage, name).kinds[0]


def resolve_for_check(stage: StageDef, inputs: dict[str, ArtifactRef]) -> dict[str, ResolvedInput]:
    """Resolve inputs without digests; links to runs that have not succeeded yet become pending inputs."""
    check_required(stage, inputs)
    out: dict[str, ResolvedInput] = {}
    for name, ref in inputs.items():
        path = f"$.spec.inputs.{name}"
        decl = _declared(stage, name)
        if ref.from_ is not None:
            up = _upstream(ref, path + ".from")
            state = ((up or {}).get("status") or {}).get("state")
            if up is None or state != RunState.succeeded.value:
                out[name] = ResolvedInput(name, "", _pending_kind(stage, name), "", upstream=_run_name(up, ref))
                continue
            uri, kind, _ = upstream_output(up, ref.from_parts()[1], path + ".from")
        else:
            assert ref.uri is not None and ref.kind is not None
            uri, kind = ref.uri, ref.kind
        out[name] = ResolvedInput(name, present_uri(stage, decl, name, uri, kind, path), kind, digest="")
    return out


def check_manifest(stage: StageDef, raw: Any) -> CheckResult:
    """Validate one manifest (a parsed JSON object) and run the stage's preflight on its plan-time inputs."""
    run_id = raw.get("run_id", "?") if isinstance(raw, dict) else "?"
    try:
        if isinstance(raw, dict) and "stage" not in raw:
            raise ManifestError("required key is missing", "$.stage")
        manifest = validate_manifest(stage, raw)
        inputs = resolve_for_check(stage, manifest.spec.inputs)
        deferred = [f"{i.name} <- {i.upstream}" for i in inputs.values() if not i.ready]
        if stage.preflight:
            try:
                stage.load(stage.preflight)(manifest.spec, inputs)
            except InputPending as e:  # a preflight that reads a pending input before its other checks
                deferred.append(f"the checks after reading {e.name}")
    except ManifestError as e:
        return CheckResult(run_id, False, str(e))
    except NotImplementedYet as e:
        return CheckResult(run_id, False, str(e))
    except ValueError as e:
        return CheckResult(run_id, False, f"$.spec: {e}")
    return CheckResult(run_id, True, None, deferred)


def read_manifests(uri: str) -> list[Any]:
    """One manifest or a JSON list of them, from a file/URI or ``-`` (standard input)."""
    import sys

    from stages.core.validation import parse_json

    text = sys.stdin.read() if uri == "-" else storage.read_text(storage.expand(uri))
    data = parse_json(text, "the manifests to check")
    return data if isinstance(data, list) else [data]
