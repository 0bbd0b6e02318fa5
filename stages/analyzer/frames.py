"""Flattening validated results into pandas frames: one row per run, and long rows per score and per forgetting
measurement, each carrying the run's labels so that any table is a filter, a pivot or a group-by away.

Missing labels and values stay NaN/None; nothing is filled with zero.
"""

from __future__ import annotations

import json
import math

import pandas as pd

from stages.analyzer.gather import Gathered
from stages.analyzer.kl_values import COLUMNS as KL_COLUMNS
from stages.analyzer.kl_values import kl_columns
from stages.core.results import EvalResults, Forgetting, Policy, Safety

LABELS = ["study", "start", "model_size", "method", "domain", "lr", "engine", "seed", "base_run_id", "target_kind"]
CONDITION = ["start", "model_size", "method", "domain", "lr", "engine"]  # what seeds are aggregated over
BASE_METHOD = "BASE"

POLICY_FIELDS = list(Policy.model_fields)
SAFETY_FIELDS = [f for f in Safety.model_fields if f not in ("harmbench_by_category", "harmbench_classifier")]
FORGETTING_FIELDS = [f for f in Forgetting.model_fields if f not in ("task",)]


def _nan(v: float | None) -> float:
    return math.nan if v is None else float(v)


def checkpoint_key(res: EvalResults) -> str:
    """What one evaluated checkpoint is: its model and its labels (the base a suite compares to aside). Results
    documents that share it (one per suite, when a study splits suites) are one checkpoint to the analysis."""
    labels = res.labels.model_dump(exclude={"base_run_id"})
    return json.dumps({"model_uri": res.model_uri, **labels}, sort_keys=True, default=str)


def runs_frame(gathered: Gathered) -> pd.DataFrame:
    """One row per results document (``run_id``), with the checkpoint it belongs to (the first run id of its group)."""
    rows = []
    first: dict[str, str] = {}
    for r in sorted(gathered.records, key=lambda r: r.run_id):
        first.setdefault(checkpoint_key(r.results), r.run_id)
    for r in gathered.records:
        res = r.results
        row = {"run_id": r.run_id, "checkpoint": first[checkpoint_key(res)], **res.labels.model_dump()}
        row.update(
            state="succeeded",
            model_uri=res.model_uri,
            **kl_columns(res),
            suites=",".join(res.suites),
            results_uri=r.source.results_uri,
            results_digest=r.digest,
            manifest_uri=r.source.manifest_uri,
            created_at=res.created_at,
        )
        rows.append(row)
    for p in gathered.pending:
        planned = {k: v for k, v in p.labels.items() if k in LABELS}
        rows.append({"run_id": p.run_id, **planned, "state": p.state, "manifest_uri": p.manifest_uri,
                     "kl_target": math.nan})
    cols = ["run_id", "checkpoint", *LABELS, "state", "model_uri", *KL_COLUMNS, "suites", "results_uri",
            "results_digest", "manifest_uri", "created_at"]
    df = pd.DataFrame(rows, columns=cols)
    df["seed"] = df["seed"].astype("Int64")
    df["lr"] = df["lr"].astype(float)
    df["is_base"] = df["method"].astype("string").str.upper().eq(BASE_METHOD).fillna(False).astype(bool)
    return df


def capability_of(task: str, evaluator_capability: str, groups: dict[str, list[str]] | None) -> str:
    if groups:
        for group, tasks in groups.items():
            if task in tasks:
                return group
    return evaluator_capability


def scores_frame(gathered: Gathered, groups: dict[str, list[str]] | None) -> pd.DataFrame:
    """Long rows (run, task, metric); ``primary`` marks the one metric per task that capability means use: the first
    metric a task reports in the first run (by run id) that has it, so acc and acc_norm are never double counted."""
    rows, primary = [], {}
    for r in gathered.records:
        for s in r.results.scores:
            primary.setdefault(s.task, s.metric)
            rows.append(
                {
                    "run_id": r.run_id,
                    "task": s.task,
                    "metric": s.metric,
                    "capability": capability_of(s.task, s.capability, groups),
                    "tier": s.tier,
                    "higher_is_better": s.higher_is_better,
                    "value": s.value,
                    "stderr": _nan(s.stderr),
                    "n": s.n,
                }
            )
    df = pd.DataFrame(
        rows, columns=["run_id", "task", "metric", "capability", "tier", "higher_is_better", "value", "stderr", "n"]
    )
    df["primary"] = pd.Series([primary.get(t) == m for t, m in zip(df["task"], df["metric"])], dtype=bool)
    df["higher_is_better"] = df["higher_is_better"].astype(bool)
    df["value"] = df["value"].astype(float)
    return df


def forgetting_frame(gathered: Gathered) -> pd.DataFrame:
    rows = []
    for r in gathered.records:
        for f in r.results.forgetting:
            rows.append({"run_id": r.run_id, "task": f.task, **{k: _nan(getattr(f, k)) for k in FORGETTING_FIELDS}})
    return pd.DataFrame(rows, columns=["run_id", "task", *FORGETTING_FIELDS])


def policy_frame(gathered: Gathered) -> pd.DataFrame:
    rows = []
    for r in gathered.records:
        if r.results.policy is not None:
            rows.append({"run_id": r.run_id, **{k: _nan(getattr(r.results.policy, k)) for k in POLICY_FIELDS}})
    return pd.DataFrame(rows, columns=["run_id", *POLICY_FIELDS])


def safety_score(s: Safety) -> float:
    """One number for 'stays safe' in [0, 1]: the mean of the available 1 − HarmBench ASR and 1 − XSTest
    under-refusal (compliance with unsafe prompts). Over-refusal is reported beside it, not folded in."""
    parts = [1.0 - v for v in (s.harmbench_asr, s.xstest_under_refusal) if v is not None]
    return sum(parts) / len(parts) if parts else math.nan


def safety_frame(gathered: Gathered) -> pd.DataFrame:
    rows = []
    for r in gathered.records:
        s = r.results.safety
        if s is None:
            continue
        row = {"run_id": r.run_id, **{k: _nan(getattr(s, k)) for k in SAFETY_FIELDS}}
        row["safety_score"] = safety_score(s)
        row["harmbench_classifier"] = s.harmbench_classifier
        row.update({f"harmbench_asr[{c}]": v for c, v in sorted(s.harmbench_by_category.items())})
        rows.append(row)
    cols = ["run_id", *SAFETY_FIELDS, "safety_score", "harmbench_classifier"]
    df = pd.DataFrame(rows)
    return df.reindex(columns=cols + [c for c in df.columns if c not in cols])
