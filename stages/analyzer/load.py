"""Reading one evaluator result and the manifest that produced it, with every fault named by file.

The analyzer trusts nothing it reads: a results document must parse, carry the one results schema this code
understands, and validate against ``stages.core.results.EvalResults``; a manifest reached from an input must be an
evaluator's. Each fault becomes an ``InputError`` that names the file and what is wrong with it, raised before the
run writes anything (the stage's preflight calls this module), so a bad study folder exits with code 2.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from stages.core import storage
from stages.core.errors import InputError
from stages.core.manifest import SCHEMA_ID as MANIFEST_SCHEMA_ID
from stages.core.results import RESULTS_SCHEMA_ID, EvalResults
from stages.core.validation import json_path

RESULTS_SCHEMA_PREFIX = "forgetting-llms/eval-results/"


@dataclass(frozen=True)
class Source:
    """Where one results document comes from."""

    results_uri: str  # the results.json itself (expanded)
    manifest_uri: str | None  # the evaluator manifest that wrote it, when known
    where: str  # the JSON path of the manifest field that named it, for error messages


@dataclass
class Record:
    """One evaluator result, validated, with the manifest that produced it (raw JSON) when there is one."""

    results: EvalResults
    source: Source
    manifest: dict[str, Any] | None
    digest: str

    @property
    def run_id(self) -> str:
        return self.results.run_id


def read_json(uri: str, what: str, where: str) -> Any:
    try:
        text = storage.read_text(uri)
    except (storage.StorageError, OSError) as e:
        raise InputError(f"cannot read {what} {uri}: {e}", where) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        where_in_file = f"line {e.lineno} column {e.colno}"
        raise InputError(f"{what} {uri} is malformed JSON: {e.msg} at {where_in_file}", where) from None


def schema_of(doc: Any) -> str | None:
    return doc.get("schema") if isinstance(doc, dict) else None


def check_results_doc(doc: Any, source: Source) -> None:
    """Refuse anything that is not a results document before pydantic sees it, with a message that says why."""
    uri, where = source.results_uri, source.where
    if not isinstance(doc, dict):
        kind = type(doc).__name__
        raise InputError(f"{uri} is not an evaluator results document (a JSON object); it holds a {kind}", where)
    schema = doc.get("schema")
    if schema == MANIFEST_SCHEMA_ID:
        stage = doc.get("stage")
        if stage == "evaluator":
            hint = f'; give its results instead: {{"from": "{uri}#outputs.results"}}'
        else:
            hint = ": the analyzer reads only evaluator results"
        what = f"the manifest of {_article(stage)} {stage!r} run"
        raise InputError(f"{uri} is {what}, not an evaluator results document{hint}", where)
    if not isinstance(schema, str) or not schema.startswith(RESULTS_SCHEMA_PREFIX):
        raise InputError(
            f"{uri} is not an evaluator results document: its 'schema' is {schema!r}, expected {RESULTS_SCHEMA_ID!r}",
            where,
        )


def check_schema_versions(docs: list[tuple[Source, dict[str, Any]]]) -> None:
    """All results must share one schema version, and it must be the one this analyzer reads."""
    by_version: dict[str, str] = {}
    for source, doc in docs:
        by_version.setdefault(doc["schema"], source.results_uri)
    if len(by_version) > 1:
        listed = "; ".join(f"{v} in {uri}" for v, uri in sorted(by_version.items()))
        where = next(s.where for s, d in docs if d["schema"] != RESULTS_SCHEMA_ID) if docs else "$.spec"
        raise InputError(
            f"results of different schema versions cannot be analysed together: {listed}; re-evaluate so that all "
            f"share one version (this analyzer reads {RESULTS_SCHEMA_ID})",
            where,
        )
    for version, uri in by_version.items():
        if version != RESULTS_SCHEMA_ID:
            where = next(s.where for s, _ in docs)
            raise InputError(
                f"{uri} has results schema {version!r}; this analyzer reads only {RESULTS_SCHEMA_ID!r}", where
            )


def validate_results(doc: dict[str, Any], source: Source) -> EvalResults:
    try:
        return EvalResults.model_validate(doc)
    except ValidationError as e:
        faults = "; ".join(f"{json_path(x['loc'])}: {x['msg']}" for x in e.errors(include_url=False)[:5])
        message = f"{source.results_uri} is not a valid evaluator results document: {faults}"
        raise InputError(message, source.where) from None


def check_evaluator_manifest(doc: Any, uri: str, where: str) -> dict[str, Any]:
    """A manifest an input points at must be a forgetting-llms manifest of the evaluator stage."""
    if not isinstance(doc, dict) or doc.get("schema") != MANIFEST_SCHEMA_ID:
        raise InputError(f"{uri} is not a forgetting-llms manifest (schema {schema_of(doc)!r})", where)
    if doc.get("stage") != "evaluator":
        raise InputError(
            f"{uri} is a {doc.get('stage')!r} manifest, not an evaluator result; the analyzer reads only the "
            "evaluator's `results`",
            where,
        )
    return doc


def results_uri_of(manifest: dict[str, Any], uri: str, where: str) -> str:
    """The results.json a succeeded evaluator manifest recorded."""
    out = (manifest.get("outputs") or {}).get("results") or {}
    if not out.get("uri"):
        rid = manifest.get("run_id")
        raise InputError(f"evaluator run {rid!r} ({uri}) succeeded but records no `results` output", where)
    try:
        return storage.expand(out["uri"])
    except storage.StorageError as e:
        raise InputError(f"{uri}: its results uri cannot be expanded: {e}", where) from None


def _article(word: object) -> str:
    return "an" if str(word)[:1].lower() in "aeiou" else "a"
