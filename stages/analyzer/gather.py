"""Gathering a study's evaluator results: from the manifest's named inputs and from a study folder.

Named inputs arrive resolved by the core (a link ``{"from": "<evaluator manifest>#outputs.results"}`` has already
been checked to point at a succeeded run with an unchanged digest); the analyzer additionally insists that the linked
manifest is an evaluator's. ``params.study_dir`` is scanned for ``**/manifest.json``: evaluator runs that succeeded
are read, evaluator runs in any other state are listed as pending (their cells stay missing in every table and
figure), and other stages' manifests are ignored. The same results file reached twice counts once; two different
files that claim one run id are an error, as are mixed schema versions.

``preflight`` runs all of this before anything is written, so every fault exits with code 2, and lets the results
found in the study folder count in the run's spec hash.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from stages.analyzer.labels import fill_labels
from stages.analyzer.load import (
    Record,
    Source,
    check_evaluator_manifest,
    check_results_doc,
    check_schema_versions,
    read_json,
    results_uri_of,
    validate_results,
)
from stages.core import storage
from stages.core.artifacts import ArtifactKind
from stages.core.digest import digest
from stages.core.errors import InputError
from stages.core.manifest import SCHEMA_ID as MANIFEST_SCHEMA_ID
from stages.core.stage import ResolvedInput


@dataclass
class Pending:
    """An evaluator run of the study that has no result yet."""

    run_id: str
    state: str
    manifest_uri: str
    message: str | None = None
    labels: dict[str, Any] = field(default_factory=dict)  # what the conductor planned (evaluator params.labels)


@dataclass
class Gathered:
    records: list[Record] = field(default_factory=list)
    pending: list[Pending] = field(default_factory=list)


def _sibling_manifest(results_uri: str) -> str | None:
    """A results file given by uri may sit in its evaluator's run folder; find that manifest if it names the file."""
    candidate = results_uri.rsplit("/", 1)[0] + "/manifest.json"
    try:
        if not storage.exists(candidate):
            return None
        doc = read_json(candidate, "manifest", "$")
    except (InputError, storage.StorageError):
        return None
    out = ((doc.get("outputs") or {}).get("results") or {}) if isinstance(doc, dict) else {}
    try:
        same = out.get("uri") and storage.expand(out["uri"]) == results_uri
    except storage.StorageError:
        same = False
    return candidate if same and doc.get("stage") == "evaluator" else None


def sources_from_inputs(spec: Any, inputs: dict[str, ResolvedInput]) -> list[Source]:
    sources = []
    for name in sorted(inputs):
        if name not in spec.inputs:  # added by the preflight from the study folder: the scan finds it again
            continue
        if not inputs[name].ready:  # plan time (`analyzer check`): the evaluator run has not happened yet
            continue
        ref = spec.inputs[name]
        where = f"$.spec.inputs.{name}"
        manifest_uri = None
        if ref.from_ is not None:
            manifest_uri = storage.expand(ref.from_parts()[0])
            doc = read_json(manifest_uri, "manifest", where + ".from")
            check_evaluator_manifest(doc, manifest_uri, where + ".from")
        else:
            manifest_uri = _sibling_manifest(inputs[name].uri)
        sources.append(Source(results_uri=inputs[name].uri, manifest_uri=manifest_uri, where=where))
    return sources


SCAN_WHERE = "$.spec.params.study_dir"


def scan_study(study_dir: str) -> tuple[list[Source], list[Pending]]:
    where = SCAN_WHERE
    try:
        root = storage.expand(study_dir)
        fs, path = storage.url_to_fs(root)
        if not fs.isdir(path):
            raise InputError(f"study_dir {root} is not a folder", where)
        found = sorted(fs.glob(path.rstrip("/") + "/**/manifest.json"))
    except (storage.StorageError, OSError) as e:
        raise InputError(f"cannot scan study_dir {study_dir!r}: {e}", where) from None
    protocol = root.split("://", 1)[0] + "://" if "://" in root else ""
    sources, pending = [], []
    for p in found:
        uri = protocol + p if protocol and not p.startswith(protocol) else p
        doc = read_json(uri, "manifest", where)
        if not isinstance(doc, dict) or doc.get("schema") != MANIFEST_SCHEMA_ID or doc.get("stage") != "evaluator":
            continue  # training runs, the analyzer's own record, unrelated files
        state = (doc.get("status") or {}).get("state") or "pending"
        run_id = str(doc.get("run_id"))
        if state != "succeeded":
            planned = ((doc.get("spec") or {}).get("params") or {}).get("labels")
            message = (doc.get("status") or {}).get("message")
            pending.append(Pending(run_id, state, uri, message, planned if isinstance(planned, dict) else {}))
            continue
        results_uri = results_uri_of(doc, uri, where)
        recorded = ((doc.get("outputs") or {}).get("results") or {}).get("digest")
        if not storage.exists(results_uri):
            raise InputError(
                f"evaluator run {run_id!r} ({uri}) succeeded but its results {results_uri} are gone", where
            )
        if recorded and digest(results_uri) != recorded:
            raise InputError(f"{results_uri} changed since evaluator run {run_id!r} recorded it ({uri})", where)
        sources.append(Source(results_uri=results_uri, manifest_uri=uri, where=where))
    return sources, pending


def _dedupe(sources: list[Source]) -> list[Source]:
    """The same file reached through an input and the study folder counts once (keep the one with a manifest)."""
    by_uri: dict[str, Source] = {}
    for s in sources:
        kept = by_uri.get(s.results_uri)
        if kept is None or (kept.manifest_uri is None and s.manifest_uri is not None):
            by_uri[s.results_uri] = s
    return list(by_uri.values())


def gather(spec: Any, inputs: dict[str, ResolvedInput]) -> Gathered:
    sources = sources_from_inputs(spec, inputs)
    pending: list[Pending] = []
    if spec.params.study_dir:
        scanned, pending = scan_study(spec.params.study_dir)
        sources += scanned
    sources = _dedupe(sources)
    docs = []
    for s in sources:
        doc = read_json(s.results_uri, "evaluator results", s.where)
        check_results_doc(doc, s)
        docs.append((s, doc))
    check_schema_versions(docs)
    records: list[Record] = []
    seen: dict[str, Source] = {}
    for s, doc in docs:
        results = validate_results(doc, s)
        if results.run_id in seen:
            raise InputError(
                f"duplicate run id {results.run_id!r}: {seen[results.run_id].results_uri} and {s.results_uri} both "
                "claim it; every evaluator result needs its own run id",
                s.where,
            )
        seen[results.run_id] = s
        manifest = read_json(s.manifest_uri, "manifest", s.where) if s.manifest_uri else None
        records.append(Record(fill_labels(results, manifest), s, manifest, digest(s.results_uri)))
    done = {r.run_id for r in records}
    pending = [p for p in pending if p.run_id not in done]
    waiting = any(not i.ready for i in inputs.values())
    if not records and not pending and not waiting:
        where_looked = f" (none under study_dir {spec.params.study_dir})" if spec.params.study_dir else ""
        raise InputError(
            "no evaluator results to analyse: give inputs of kind eval_results or a study_dir holding evaluator "
            f"runs{where_looked}",
            "$.spec.params.study_dir" if spec.params.study_dir else "$.spec.inputs",
        )
    records.sort(key=lambda r: r.run_id)
    return Gathered(records, sorted(pending, key=lambda p: p.run_id))


STUDY_INPUT_PREFIX = "study_dir:"


def preflight(spec: Any, inputs: dict[str, ResolvedInput]) -> None:
    """Run by the lifecycle before anything is written: every fault in the inputs exits with code 2.

    The results found in ``study_dir`` are added to the resolved inputs (named ``study_dir:<run id>``), so that the
    run's spec hash covers their digests: when an evaluator run of the study finishes or is redone, the same
    analyzer manifest runs again instead of being skipped as already done.
    """
    gathered = gather(spec, inputs)
    for r in gathered.records:
        if r.source.where == SCAN_WHERE:
            name = STUDY_INPUT_PREFIX + r.run_id
            inputs.setdefault(name, ResolvedInput(name, r.source.results_uri, ArtifactKind.eval_results, r.digest))
