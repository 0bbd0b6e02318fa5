"""Turn lm-eval's per-sample logs (``log_samples``) into the evaluator's item records.

lm-eval logs one entry per (document, filter): the document index and hash, the request arguments (context and,
for multiple choice, each choice), the raw responses (all ``repeats`` of a generative request; one
(log-likelihood, is-greedy) pair per choice), and the per-item metric values. Entries of one document are merged,
metrics keyed ``metric,filter`` as in lm-eval's aggregated results, and the catalog's metric decides correctness
(a continuous per-item score such as truthfulqa_mc2's probability mass counts as correct at >= 0.5).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from stages.evaluator.items import ItemRecord
from stages.evaluator.lmeval.catalog import info

SKIP_KEYS = {"doc_id", "doc", "target", "arguments", "resps", "filtered_resps", "filter", "metrics", "doc_hash",
             "prompt_hash", "target_hash"}


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)):
        return float(value)
    return None


def _primary(metrics: dict[str, float], task: str) -> str | None:
    entry = info(task)
    if entry.metric and entry.filter and f"{entry.metric},{entry.filter}" in metrics:
        return f"{entry.metric},{entry.filter}"
    if entry.metric:
        for key in metrics:
            if key.split(",")[0] == entry.metric:
                return key
    return next(iter(metrics), None)


def _mc_fields(sample: dict[str, Any]) -> dict[str, Any]:
    args = sample.get("arguments") or []
    logliks = [float(r[0]) for r in sample.get("filtered_resps") or []]
    choices = [str(a[1]) for a in args if isinstance(a, (list, tuple)) and len(a) > 1]
    target = sample.get("target")
    label = int(target) if isinstance(target, int) or (isinstance(target, str) and target.isdigit()) else None
    if label is not None and not 0 <= label < len(logliks):
        label = None
    return {
        "choice_logliks": logliks,
        "choice_lengths": [max(len(c), 1) for c in choices] if len(choices) == len(logliks) else None,
        "label": label,
        "prompt": str(args[0][0]) if args else None,
    }


def _gen_fields(sample: dict[str, Any], count_tokens: Callable[[str], int] | None) -> dict[str, Any]:
    args = sample.get("arguments") or []
    raw = sample.get("resps") or []
    responses = [str(r) for r in (raw[0] if raw and isinstance(raw[0], (list, tuple)) else raw)]
    return {
        "responses": responses,
        "response_tokens": [count_tokens(r) for r in responses] if count_tokens else None,
        "prompt": str(args[0][0]) if args and isinstance(args[0], (list, tuple)) else None,
        "target": None if sample.get("target") is None else str(sample["target"]),
    }


def records_from_samples(
    task: str, samples: Sequence[dict[str, Any]], kind: str, count_tokens: Callable[[str], int] | None = None,
    doc_fields: Sequence[str] = (),
) -> list[ItemRecord]:
    """One record per document of ``task``; ``kind`` is "mc" (log-likelihood tasks) or "gen".

    ``doc_fields`` are copied from the document into ``extra["doc"]`` (e.g. XSTest's type and label).
    """
    by_doc: dict[int, ItemRecord] = {}
    for sample in samples:
        doc_id = int(sample["doc_id"])
        record = by_doc.get(doc_id)
        if record is None:
            fields = _mc_fields(sample) if kind == "mc" else _gen_fields(sample, count_tokens)
            record = ItemRecord(task=task, item_id=str(doc_id), kind=kind, doc_hash=sample.get("doc_hash"), **fields)
            if doc_fields:
                doc = sample.get("doc") or {}
                record.extra["doc"] = {k: doc.get(k) for k in doc_fields}
            by_doc[doc_id] = record
        suffix = sample.get("filter") or "none"
        for name in sample.get("metrics") or [k for k in sample if k not in SKIP_KEYS]:
            value = _number(sample.get(name))
            if value is not None:
                record.metrics[f"{name},{suffix}"] = value
    for record in by_doc.values():
        key = _primary(record.metrics, task)
        record.metric = key
        record.score = None if key is None else record.metrics[key]
        record.correct = None if record.score is None else record.score >= 0.5
    return [by_doc[k] for k in sorted(by_doc)]
