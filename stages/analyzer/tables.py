"""The study's tables, each written as CSV (raw numbers, missing = empty) and Markdown (readable, missing = —).

Per checkpoint: runs, every score with its base and delta, capability scores and changes, sample-level forgetting,
policy and safety metrics, the per-run summary. Per condition (seeds aggregated, mean and t interval): capability
changes, summary, forgetting, policy, safety. Plus the points of both Pareto plots with their front membership,
the KL fit, and the heatmap's noise band per cell. The runs and checkpoints tables carry both KL figures: the one
used (``kl_target``, exact unless ``kl_estimator`` says monte-carlo) and the Monte Carlo check (``kl_target_mc``),
each with its standard error.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from stages.analyzer.analysis import Analysis, with_labels
from stages.analyzer.formatting import to_markdown
from stages.analyzer.frames import CONDITION
from stages.analyzer.kl_values import COLUMNS as KL_COLUMNS
from stages.analyzer.order import ordered_capabilities, sort_frame

RUN_LABELS = CONDITION + ["seed", "target_kind"]  # target_kind: what a GT method trained on


@dataclass
class Table:
    name: str
    title: str
    frame: pd.DataFrame


def _wide(caps: pd.DataFrame, ckpts: pd.DataFrame, value: str) -> pd.DataFrame:
    if caps.empty:
        return with_labels(pd.DataFrame({"checkpoint": []}), ckpts)
    w = caps.pivot(index="checkpoint", columns="capability", values=value)
    w = w[ordered_capabilities(w.columns)].reset_index()
    w.columns.name = None
    return sort_frame(with_labels(w, ckpts))


def _by_checkpoint(df: pd.DataFrame, ckpts: pd.DataFrame) -> pd.DataFrame:
    return sort_frame(with_labels(df, ckpts))


def build_tables(a: Analysis, pareto_target: pd.DataFrame, pareto_safety: pd.DataFrame,
                 kl_fit: pd.DataFrame, noise_bands: pd.DataFrame | None = None) -> list[Table]:
    runs, ck = a.runs, a.checkpoints
    run_cols = ["run_id", "checkpoint", *RUN_LABELS, "state", "matched_base", "protocol_differs", *KL_COLUMNS,
                "model_uri", "results_uri", "manifest_uri"]
    score_cols = ["checkpoint", "run_id", "task", "metric", "capability", "primary", "value", "stderr", "n",
                  "base_run", "base_value", "delta", "change", "same_items"]
    return [
        Table("runs", "Results (one per evaluator run) and runs not finished yet", sort_frame(runs[run_cols])),
        Table("checkpoints", "Checkpoints (a model with its labels; its results, one per suite)", sort_frame(ck)),
        Table("scores", "Every score of every checkpoint, with its base and delta",
              _by_checkpoint(a.scores[score_cols], ck)),
        Table("capability_scores", "Capability scores per checkpoint (mean of primary metrics)",
              _wide(a.capabilities, ck, "score")),
        Table("capability_changes", "Capability change vs base per checkpoint (positive = better)",
              _wide(a.capabilities, ck, "change")),
        Table("capability_changes_by_condition", "Capability change vs base, seeds aggregated",
              sort_frame(a.by_condition["capabilities"])),
        Table("summary", "Per checkpoint: target gain, retained change, forgetting, safety, KL",
              _by_checkpoint(a.summary, ck)),
        Table("summary_by_condition", "Per condition, seeds aggregated", sort_frame(a.by_condition["summary"])),
        Table("forgetting", "Sample-level forgetting per checkpoint and task", _by_checkpoint(a.forgetting, ck)),
        Table("forgetting_by_condition", "Sample-level forgetting, seeds aggregated",
              sort_frame(a.by_condition["forgetting"])),
        Table("policy", "Policy metrics per checkpoint (delta = post − base)", _by_checkpoint(a.policy, ck)),
        Table("policy_by_condition", "Policy metrics, seeds aggregated", sort_frame(a.by_condition["policy"])),
        Table("safety", "Safety per checkpoint (delta = post − base)", _by_checkpoint(a.safety, ck)),
        Table("safety_by_condition", "Safety, seeds aggregated", sort_frame(a.by_condition["safety"])),
        Table("pareto_target", "Target gain vs retained change: points and Pareto front", sort_frame(pareto_target)),
        Table("pareto_safety", "Safety vs target score (SAFE start): points and Pareto front",
              sort_frame(pareto_safety)),
        Table("kl_fit", "Forgetting vs KL(base || post) on target prompts (exact per-token KL; Monte Carlo where "
              "older results lack it): quadratic fit", kl_fit),
        *([] if noise_bands is None else [Table(
            "heatmap_noise_bands", "Heatmap noise band per condition and capability: |change| at most the band is "
            "drawn neutral (band = base-vs-base flip rate where measured, never below the floor)",
            sort_frame(noise_bands))]),
    ]


def write_tables(tables: list[Table], folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for t in tables:
        t.frame.to_csv(folder / f"{t.name}.csv", index=False)
        (folder / f"{t.name}.md").write_text(f"# {t.title}\n\n" + to_markdown(t.frame))
