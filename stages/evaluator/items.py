"""Per-item records: what the evaluator keeps of every scored item, one JSONL file per task under ``samples/``.

Why its own format: sample-level forgetting, calibration, diversity and length shift all need per-item data from
both the base and the post-trained model, from lm-eval tasks and from the project's own suites alike; the analyzer
and later re-analyses must read them without lm-eval. An item's identity is its ``item_id`` (lm-eval's doc index,
or the dataset row index for target envs) plus ``doc_hash`` (the document's content hash), so two result sets can
be checked to cover the same items before they are compared.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

SAMPLES_DIR = "samples"


@dataclass
class ItemRecord:
    task: str
    item_id: str
    kind: Literal["mc", "gen"]
    correct: bool | None = None  # the verdict sample-level forgetting uses (None: no verdict)
    score: float | None = None  # the primary metric's per-item value (may be continuous, e.g. truthfulqa_mc2)
    metric: str | None = None  # which metric ``score`` is ("acc", "exact_match,strict-match", "pass@1" ...)
    metrics: dict[str, float] = field(default_factory=dict)  # every per-item metric reported
    doc_hash: str | None = None
    choice_logliks: list[float] | None = None  # multiple choice: summed log-likelihood of each choice
    choice_lengths: list[int] | None = None  # multiple choice: characters of each choice (length normalisation)
    label: int | None = None  # multiple choice: gold index
    responses: list[str] | None = None  # generative: every sample, raw
    response_tokens: list[int] | None = None  # generative: token count of each response
    prompt: str | None = None
    target: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, default=str)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ItemRecord:
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in d.items() if k in known})


def samples_file(task: str) -> str:
    """``samples/<task>.jsonl`` with characters outside [A-Za-z0-9_.-] replaced (``eval:MATH500`` -> ``eval_MATH500``)."""
    return f"{SAMPLES_DIR}/{re.sub(r'[^A-Za-z0-9_.-]', '_', task)}.jsonl"


def write_records(out_dir: Path, task: str, records: Iterable[ItemRecord]) -> str:
    rel = samples_file(task)
    path = out_dir / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".jsonl.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.writelines(r.to_json() + "\n" for r in records)
    tmp.replace(path)
    return rel


def read_records(path: Path) -> list[ItemRecord]:
    with open(path, encoding="utf-8") as f:
        return [ItemRecord.from_dict(json.loads(line)) for line in f if line.strip()]


def subset_hash(records: Sequence[ItemRecord]) -> str:
    """sha256 over the sorted ``item_id:doc_hash`` pairs: equal iff two runs scored the same documents."""
    keys = sorted(f"{r.item_id}:{r.doc_hash or ''}" for r in records)
    return "sha256:" + hashlib.sha256("\n".join(keys).encode()).hexdigest()


def correctness(records: Sequence[ItemRecord]) -> dict[str, bool | None]:
    return {r.item_id: r.correct for r in records}
