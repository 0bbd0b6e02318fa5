"""Which HarmBench semantic categories break first: the attack success rate of each category against the base's,
per method (seeds aggregated), from ``Safety.harmbench_by_category`` of ``results.json`` (the analysis already
carries it per checkpoint as ``harmbench_asr[<category>]`` with its ``_delta`` against the base).

Per condition the categories are ranked by their ASR change (rank 1 = the largest increase: the category that broke
first), and across the trained conditions of a start and size by their mean change; the figure, one per start and
size, is a heatmap method × category of the change, categories ordered so that the left-most broke most.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import pandas as pd

from stages.analyzer.analysis import Analysis
from stages.analyzer.figures.style import DIVERGING, Figure, new_figure
from stages.analyzer.frames import CONDITION
from stages.analyzer.order import sort_frame
from stages.analyzer.safety_common import by_condition, emit, grid_of, heat, label_order, labelled_rows, panels
from stages.analyzer.safety_common import symmetric
from stages.analyzer.tables import Table

CATEGORY = re.compile(r"^harmbench_asr\[(.+)\]$")
VALUES = ["asr", "asr_base", "asr_change"]


def category_frame(a: Analysis) -> pd.DataFrame:
    """Per checkpoint × category: ASR, its base's ASR and the change (post − base; positive = less safe)."""
    rows = []
    for col in a.safety.columns:
        m = CATEGORY.match(col)
        if not m:
            continue
        delta = a.safety[f"{col}_delta"] if f"{col}_delta" in a.safety.columns else pd.Series(math.nan,
                                                                                               a.safety.index)
        for ck, asr, d in zip(a.safety["checkpoint"], a.safety[col].astype(float), delta.astype(float)):
            if math.isfinite(asr):
                rows.append({"checkpoint": ck, "category": m.group(1), "asr": asr, "asr_base": asr - d,
                             "asr_change": d})
    return pd.DataFrame(rows, columns=["checkpoint", "category", *VALUES])


def aggregate_categories(a: Analysis, confidence: float) -> pd.DataFrame:
    """Per condition × category (seeds aggregated), with ``rank`` of the change within the condition."""
    agg = by_condition(category_frame(a), a, ["category"], VALUES, confidence)
    agg["rank"] = agg.groupby(CONDITION, dropna=False)["asr_change"].rank(ascending=False, method="min")
    agg["rank"] = agg["rank"].astype("Int64")
    return sort_frame(agg)


def breaking_order(agg: pd.DataFrame) -> pd.DataFrame:
    """Per start, size and category over its trained conditions: mean ASR change, how many conditions, how many
    ranked it first; ordered so that the category that broke most comes first."""
    trained = agg[~agg["method"].astype(str).str.upper().eq("BASE") & agg["asr_change"].notna()]
    cols = ["start", "model_size", "category", "mean_asr_change", "max_asr_change", "n_conditions", "n_ranked_first"]
    if trained.empty:
        return pd.DataFrame(columns=cols)
    g = trained.groupby(["start", "model_size", "category"], dropna=False)
    out = g.agg(mean_asr_change=("asr_change", "mean"), max_asr_change=("asr_change", "max"),
                n_conditions=("asr_change", "size"), n_ranked_first=("rank", lambda r: int((r == 1).sum())))
    out = out.reset_index().sort_values(["start", "model_size", "mean_asr_change", "category"],
                                        ascending=[True, True, False, True])
    return out[cols].reset_index(drop=True)


def category_tables(agg: pd.DataFrame, order: pd.DataFrame) -> list[Table]:
    return [
        Table("safety_categories", "HarmBench ASR per semantic category and condition: post, base, change "
              "(positive = less safe; seeds aggregated); rank 1 = the category that broke most", agg),
        Table("safety_categories_order", "Which HarmBench categories break first: mean ASR change over the trained "
              "conditions of each start and size, and how often each ranked first", order),
    ]


def draw_categories(agg: pd.DataFrame, order: pd.DataFrame, folder: Path,
                    formats: list[str]) -> tuple[list[Figure], list[str]]:
    trained = agg[~agg["method"].astype(str).str.upper().eq("BASE")]
    out = []
    for (start, size), sub in panels(trained):
        if sub["asr_change"].notna().sum() == 0:
            continue
        sub = labelled_rows(sub)
        ranked = order[(order["start"].astype(str) == str(start)) & (order["model_size"].astype(str) == str(size))]
        cats = list(ranked["category"]) + sorted(set(sub["category"]) - set(ranked["category"]))
        rows = label_order(sub)
        grid = grid_of(sub, rows, cats, "category", "asr_change")
        fig = new_figure(0.75 * len(cats) + 4.2, 0.34 * len(rows) + 2.4)
        ax = fig.subplots()
        heat(ax, grid, rows, cats, "HarmBench ASR change vs base (seed mean)", DIVERGING + "_r",
             symmetric(grid, 0.05), colorbar="Δ ASR (+ = less safe)")
        ax.set_xlabel("semantic category, broke most (left) to least (right)")
        caption = ("Change of the direct-request attack success rate per HarmBench semantic category against the "
                   "base (red = more harmful compliance, blue = safer, grey = missing); categories ordered by their "
                   "mean change over the methods (table safety_categories_order).")
        out.append(emit(fig, "safety-categories", "HarmBench categories breaking", start, size, caption, folder,
                        formats))
    return out, [] if out else ["HarmBench categories: no trained checkpoint with per-category ASR and a base yet."]
