"""The staging record: ``<root>/staging.json``, one entry per staged item, written after each item.

Why a record: a login-node download of a study's inputs takes hours and gets interrupted; the record is what makes
re-running cheap (a complete item is skipped without touching the network) and what ``study check`` compares the
scratch against (a file removed or truncated since staging is named). Each entry keeps what a paper's data
statement needs: the source and its resolved revision, the licence, the size and a digest (``sha256-dir:`` for a
folder, as ``stages.core.digest`` computes it, so it equals the input digest the stage records), plus per kind the
split row counts, the worked-solution join's match rates and the ground-truth target kind.
"""

from __future__ import annotations

import datetime as _dt
import json
from pathlib import Path
from typing import Any

from stages.study.errors import StudyError
from stages.study.paths import join, local

RECORD = "staging.json"
SCHEMA = "forgetting-llms/staging/v1"


def record_file(root: str) -> Path:
    return local(join(root, RECORD))


def read_record(root: str) -> dict[str, Any]:
    """The record under a runs root (an empty one when nothing was staged there)."""
    try:
        path = record_file(root)
    except StudyError:
        return {"schema": SCHEMA, "items": {}}
    if not path.is_file():
        return {"schema": SCHEMA, "items": {}}
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise StudyError(f"staging record {path} cannot be read: {e} (remove it and run `study stage` again)") from None
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
        raise StudyError(f"staging record {path} is not a {SCHEMA} document")
    return doc


def write_record(root: str, doc: dict[str, Any]) -> Path:
    path = record_file(root)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path


def now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def entry_problem(entry: dict[str, Any]) -> str | None:
    """What is missing or changed since a complete entry was staged (sizes only: no hashing), else None."""
    where = Path(entry["local"])
    if entry.get("files"):
        for rel, info in sorted(entry["files"].items()):
            p = where / rel
            if not p.is_file():
                return f"{p} is missing (staged {entry.get('staged_at')})"
            if p.stat().st_size != info["size"]:
                return f"{p} has {p.stat().st_size} bytes, staged with {info['size']}"
        return None
    if "size" in entry:
        if not where.is_file():
            return f"{where} is missing (staged {entry.get('staged_at')})"
        if where.stat().st_size != entry["size"]:
            return f"{where} has {where.stat().st_size} bytes, staged with {entry['size']}"
    return None
