"""From flat frames to the study's quantities: deltas against each result's base, capability means, the
per-checkpoint summary (target gain, retained change, forgetting, safety, KL) and their seed-aggregated versions.

Definitions (kept in one place so tables and figures agree):
- a *result* is one results document (one run id); a *checkpoint* is an evaluated model with its labels, which a
  study may have scored in several results (one per suite): the analysis is per checkpoint, the deltas per result;
- ``delta`` = post − base of one (task, metric) against the result's base (``stages.analyzer.bases``); ``change``
  = delta oriented so that positive is better (``higher_is_better`` false flips it): negative change is forgetting;
- a capability's score or change is the mean over its tasks' primary metrics;
- ``target_gain`` is the change of the ``target`` capability; ``retained_change`` is the mean change over the
  other capabilities, leaving out ``params.retained_exclude`` and the run's own domain (math training's math gain is
  not retention); ``forgetting`` = −retained_change;
- per condition (start, size, method, domain, lr, engine) the checkpoints' values are averaged over seeds with a
  t interval; a missing value is left out of a mean, never counted as zero.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from stages.analyzer.bases import match_bases, missing, protocol_differences, same_items
from stages.analyzer.frames import (
    CONDITION,
    FORGETTING_FIELDS,
    forgetting_frame,
    policy_frame,
    runs_frame,
    safety_frame,
    scores_frame,
)
from stages.analyzer.gather import Gathered
from stages.analyzer.kl_values import COLUMNS as KL_COLUMNS
from stages.analyzer.stats import aggregate

TARGET = "target"
LABEL_COLS = CONDITION + ["seed"]
SUMMARY_COLS = ["target_score", "target_gain", "retained_change", "forgetting", "safety_score", "safety_change",
                "kl_target", "sample_forgetting"]


@dataclass
class Analysis:
    runs: pd.DataFrame  # per result (and per unfinished run)
    checkpoints: pd.DataFrame  # per checkpoint: labels, is_base, its results, KL
    scores: pd.DataFrame  # per result × task × metric, with base value, delta, change
    capabilities: pd.DataFrame  # per checkpoint × capability
    summary: pd.DataFrame  # per checkpoint
    forgetting: pd.DataFrame  # per result × task
    policy: pd.DataFrame  # per checkpoint, with deltas
    safety: pd.DataFrame  # per checkpoint, with deltas
    by_condition: dict[str, pd.DataFrame]


def with_labels(df: pd.DataFrame, ckpts: pd.DataFrame, cols: list[str] | None = None) -> pd.DataFrame:
    """Prefix per-checkpoint rows with the checkpoint's labels."""
    cols = cols if cols is not None else LABEL_COLS
    return _keyed(ckpts[["checkpoint", *cols]]).merge(_keyed(df), on="checkpoint", how="inner")


def _keyed(df: pd.DataFrame, key: str = "checkpoint") -> pd.DataFrame:
    """The join key as objects, also in empty frames (where pandas would guess float)."""
    return df.astype({key: object}) if key in df.columns else df


def checkpoints_frame(runs: pd.DataFrame) -> pd.DataFrame:
    done = runs[runs["state"] == "succeeded"]
    rows = []
    for ck, g in done.groupby("checkpoint", sort=True):
        first = g.sort_values("run_id").iloc[0]
        kl = g[g["kl_target"].notna()].sort_values("run_id")
        kl_row = {c: kl.iloc[0][c] for c in KL_COLUMNS} if len(kl) else {"kl_target": math.nan}
        rows.append({"checkpoint": ck, **{c: first[c] for c in LABEL_COLS}, "is_base": bool(first["is_base"]),
                     "results": ",".join(sorted(g["run_id"])), **kl_row})
    df = pd.DataFrame(rows, columns=["checkpoint", *LABEL_COLS, "is_base", "results", *KL_COLUMNS])
    df["seed"] = df["seed"].astype("Int64")
    df["is_base"] = df["is_base"].astype(bool)
    return df


def score_deltas(scores: pd.DataFrame, runs: pd.DataFrame, gathered: Gathered) -> pd.DataFrame:
    s = scores.merge(runs[["run_id", "checkpoint", "matched_base"]], on="run_id").rename(
        columns={"matched_base": "base_run"}
    )
    b = scores[["run_id", "task", "metric", "value"]].rename(columns={"run_id": "base_run", "value": "base_value"})
    b = b.groupby(["base_run", "task", "metric"], as_index=False)["base_value"].mean()
    for df in (s, b):  # keys stay objects even when a frame is empty (a study with no results yet)
        for key in ("base_run", "task", "metric"):
            df[key] = df[key].astype(object)
    s = s.merge(b, on=["base_run", "task", "metric"], how="left")
    s["delta"] = s["value"] - s["base_value"]
    s["change"] = np.where(s["higher_is_better"].astype(bool), s["delta"], -s["delta"])
    s["same_items"] = same_items(s, gathered)
    return s


def capability_frame(deltas: pd.DataFrame) -> pd.DataFrame:
    p = deltas[deltas["primary"]]
    g = p.groupby(["checkpoint", "capability"], sort=True)
    return g.agg(score=("value", "mean"), change=("change", "mean"), n_tasks=("task", "nunique")).reset_index()


def _per_result_deltas(df: pd.DataFrame, bases: pd.Series, cols: list[str]) -> pd.DataFrame:
    """Add ``<col>_delta`` (post − its base) to per-result wide frames (policy, safety)."""
    out = df.copy()
    by_run = df.set_index("run_id")
    base = out["run_id"].map(bases)
    for c in cols:
        out[f"{c}_delta"] = out[c].to_numpy(dtype=float) - base.map(by_run[c]).to_numpy(dtype=float)
    return out


def _per_checkpoint(df: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    """Collapse per-result rows to one per checkpoint (the first value present in any of its results)."""
    cols = [c for c in df.columns if c != "run_id"]
    merged = runs[["run_id", "checkpoint"]].merge(df, on="run_id").sort_values("run_id")
    return merged.groupby("checkpoint", as_index=False, sort=True)[cols].first()


def summary_frame(ckpts: pd.DataFrame, caps: pd.DataFrame, safety: pd.DataFrame, forgetting: pd.DataFrame,
                  exclude: list[str]) -> pd.DataFrame:
    rows = []
    cap_by = {ck: g.set_index("capability") for ck, g in caps.groupby("checkpoint")}
    empty = pd.DataFrame(columns=["safety_score", "safety_score_delta"])
    safe = safety.set_index("checkpoint") if len(safety) else empty
    sample_f = forgetting.groupby("checkpoint")["forgetting"].mean() if len(forgetting) else pd.Series(dtype=float)
    for row in ckpts.itertuples():
        c = cap_by.get(row.checkpoint)
        target_score = target_gain = retained = math.nan
        if c is not None:
            if TARGET in c.index:
                target_score, target_gain = float(c.at[TARGET, "score"]), float(c.at[TARGET, "change"])
            keep = [k for k in c.index if k != TARGET and k not in exclude and (missing(row.domain) or k != row.domain)]
            changes = c.loc[keep, "change"].dropna()
            retained = float(changes.mean()) if len(changes) else math.nan
        has_safety = row.checkpoint in safe.index
        rows.append({
            "checkpoint": row.checkpoint,
            "target_score": target_score,
            "target_gain": target_gain,
            "retained_change": retained,
            "forgetting": -retained,
            "safety_score": float(safe.at[row.checkpoint, "safety_score"]) if has_safety else math.nan,
            "safety_change": float(safe.at[row.checkpoint, "safety_score_delta"]) if has_safety else math.nan,
            "kl_target": row.kl_target,
            "sample_forgetting": float(sample_f.get(row.checkpoint, math.nan)),
        })
    return pd.DataFrame(rows, columns=["checkpoint", *SUMMARY_COLS])


def analyse(gathered: Gathered, groups: dict[str, list[str]] | None, exclude: list[str],
            confidence: float) -> Analysis:
    runs = runs_frame(gathered)
    bases = match_bases(runs)
    runs["matched_base"] = runs["run_id"].map(bases)
    runs["protocol_differs"] = runs["run_id"].map(protocol_differences(gathered, bases))
    ckpts = checkpoints_frame(runs)
    scores = score_deltas(scores_frame(gathered, groups), runs, gathered)
    caps = capability_frame(scores)
    forgetting = runs[["run_id", "checkpoint"]].merge(forgetting_frame(gathered), on="run_id")
    policy_raw, safety_raw = policy_frame(gathered), safety_frame(gathered)
    policy_cols = [c for c in policy_raw.columns if c != "run_id"]
    safety_cols = [c for c in safety_raw.columns if c not in ("run_id", "harmbench_classifier")]
    policy = _per_checkpoint(_per_result_deltas(policy_raw, bases, policy_cols), runs)
    safety = _per_checkpoint(_per_result_deltas(safety_raw, bases, safety_cols), runs)
    summary = summary_frame(ckpts, caps, safety, forgetting, exclude)

    trained = ckpts[~ckpts["is_base"]][["checkpoint"]]
    per_task = forgetting.drop(columns=["run_id"]).groupby(["checkpoint", "task"], as_index=False).mean()

    def agg(df: pd.DataFrame, keys: list[str], cols: list[str]) -> pd.DataFrame:
        return aggregate(with_labels(_keyed(df).merge(_keyed(trained)), ckpts), CONDITION + keys, cols, confidence)

    by_condition = {
        "summary": agg(summary, [], SUMMARY_COLS),
        "capabilities": agg(caps, ["capability"], ["score", "change"]),
        "forgetting": agg(per_task, ["task"], [f for f in FORGETTING_FIELDS if f != "n"]),
        "policy": agg(policy, [], policy_cols + [f"{c}_delta" for c in policy_cols]),
        "safety": agg(safety, [], safety_cols + [f"{c}_delta" for c in safety_cols]),
    }
    return Analysis(runs, ckpts, scores, caps, summary, forgetting, policy, safety, by_condition)
