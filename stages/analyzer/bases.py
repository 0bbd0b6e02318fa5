"""Which base each result is compared to, and whether the comparison is fair.

A result's base is ``labels.base_run_id`` (the conductor names the base evaluation of the same suite and domain).
Without one, it is the BASE-method result with the same start and model size, preferring the same domain. A base
that is named but not loaded (not evaluated yet) leaves every delta of that result missing, never zero.

Fairness: the evaluator records which items it scored per task (``item_subset_hash``) and the settings two results
must share to be compared (``protocol``). A delta across different item sets, or a result whose protocol differs
from its base's, is flagged in the tables and listed in the report rather than silently mixed in.
"""

from __future__ import annotations

import math

import pandas as pd

from stages.analyzer.gather import Gathered


def missing(v: object) -> bool:
    return v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v))


def same(a: object, b: object) -> bool:
    return (missing(a) and missing(b)) or (not missing(a) and not missing(b) and a == b)


def match_bases(runs: pd.DataFrame) -> pd.Series:
    """run_id -> run_id of its base (None for bases and for results whose base is not there)."""
    done = runs[runs["state"] == "succeeded"]
    ids = set(done["run_id"])
    bases = done[done["is_base"]].sort_values("run_id")
    out: dict[str, str | None] = {}
    for row in done.itertuples():
        if row.is_base:
            out[row.run_id] = None
        elif not missing(row.base_run_id):
            out[row.run_id] = row.base_run_id if row.base_run_id in ids else None
        else:
            cands = [b for b in bases.itertuples() if same(b.start, row.start) and same(b.model_size, row.model_size)]
            cands.sort(key=lambda b: (not same(b.domain, row.domain), b.run_id))
            out[row.run_id] = cands[0].run_id if cands else None
    return pd.Series(out, name="matched_base", dtype=object)


def protocol_differences(gathered: Gathered, bases: pd.Series) -> pd.Series:
    """run_id -> the protocol keys on which it differs from its base ('' when none or unknown)."""
    protocols = {r.run_id: r.results.protocol for r in gathered.records}
    out = {}
    for rid, base in bases.items():
        mine = protocols.get(rid) or {}
        theirs = (protocols.get(base) or {}) if isinstance(base, str) else {}
        out[rid] = ",".join(sorted(k for k in set(mine) & set(theirs) if mine[k] != theirs[k]))
    return pd.Series(out, name="protocol_differs", dtype=object)


def same_items(scores: pd.DataFrame, gathered: Gathered) -> pd.Series:
    """Per score row: did it and its base score the same items (True/False), or is that unknown (None)?"""
    hashes = {r.run_id: r.results.item_subset_hash for r in gathered.records}
    out = []
    for rid, base, task in zip(scores["run_id"], scores["base_run"], scores["task"]):
        a = hashes.get(rid, {}).get(task)
        b = hashes.get(base, {}).get(task) if isinstance(base, str) else None
        out.append(None if a is None or b is None else a == b)
    return pd.Series(out, index=scores.index, dtype=object)


def _listed(items: list[str], limit: int = 8) -> str:
    more = f" and {len(items) - limit} more" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


def comparability_warnings(runs: pd.DataFrame, scores: pd.DataFrame) -> list[str]:
    """Sentences for the report about comparisons that are missing or not like for like."""
    out = []
    done = runs[(runs["state"] == "succeeded") & ~runs["is_base"]]
    orphans = done[done["matched_base"].isna()]
    if len(orphans):
        out.append(f"No base results yet, so deltas missing ({len(orphans)}): "
                   + _listed(sorted(orphans["run_id"])))
    differs = done[done["protocol_differs"].fillna("").astype(str) != ""]
    if len(differs):
        out.append(f"Evaluated with settings that differ from their base's ({len(differs)}): "
                   + _listed([f"{r} ({k})" for r, k in zip(differs["run_id"], differs["protocol_differs"])]))
    other = scores[scores["same_items"].map(lambda v: v is False)]
    if len(other):
        pairs = sorted({f"{r}:{t}" for r, t in zip(other["run_id"], other["task"])})
        out.append(f"Scored on other items than their base, per task ({len(pairs)}): " + _listed(pairs))
    return out
