"""The analysis end to end, independent of the lifecycle: gathered results -> tables, figures, report.

``run.py`` calls this with the run's context; tests and notebooks can call it directly on a ``Gathered``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from stages.analyzer.analysis import analyse
from stages.analyzer.bases import comparability_warnings
from stages.analyzer.figures.heatmap import draw_heatmaps
from stages.analyzer.figures.kl import draw_kl
from stages.analyzer.figures.representations import draw_representations
from stages.analyzer.figures.scale import draw_scale
from stages.analyzer.figures.tradeoffs import draw_safety_tradeoff, draw_target_tradeoff
from stages.analyzer.gather import Gathered
from stages.analyzer.kl_values import monte_carlo_warning
from stages.analyzer.klfit import kl_fit, kl_points
from stages.analyzer.noise import noise_bands
from stages.analyzer.params import AnalyzerParams
from stages.analyzer.pareto import safety_points, target_points
from stages.analyzer.report import CSS, ReportContext, render, write_report
from stages.analyzer.representations import aggregate_representations, representation_tables
from stages.analyzer.safety_report import safety_report
from stages.analyzer.tables import build_tables, write_tables

REPORT_DIR = "report"
TABLES_DIR = "tables"


def build(gathered: Gathered, params: AnalyzerParams, out: Path, ctx: ReportContext) -> dict[str, Any]:
    a = analyse(gathered, params.capability_groups, list(params.retained_exclude), params.confidence)
    pt, ps = target_points(a.by_condition["summary"]), safety_points(a.by_condition["summary"])
    kpts = kl_points(a.summary, a.checkpoints)
    fit = kl_fit(kpts)
    bands = noise_bands(a, params.heatmap_noise_floor, params.confidence)
    rep = aggregate_representations(gathered, a, params.confidence)
    report_dir = out / REPORT_DIR
    formats = list(dict.fromkeys(params.figure_formats))
    safety = safety_report(gathered, a, params.confidence, report_dir, formats, ctx.title, CSS)
    tables = build_tables(a, pt, ps, fit, bands) + representation_tables(rep) + safety.tables
    write_tables(tables, out / TABLES_DIR)

    figures, notes = [], []
    for figs, why in (
        draw_heatmaps(a.by_condition["capabilities"], report_dir, formats, a.runs[a.runs["state"] != "succeeded"],
                      bands, params.heatmap_noise_floor),
        draw_target_tradeoff(pt, report_dir, formats),
        draw_safety_tradeoff(ps, a, report_dir, formats),
        draw_scale(a.by_condition["summary"], report_dir, formats),
        draw_kl(kpts, fit, report_dir, formats),
        draw_representations(rep, report_dir, formats),
        (safety.figures, safety.notes),
    ):
        figures += figs
        notes += why
    warnings = comparability_warnings(a.runs, a.scores) + monte_carlo_warning(a.checkpoints)
    write_report(report_dir, render(ctx, figures, notes, tables, gathered, warnings, safety.examples_page))
    r2 = float(fit["r2"].iloc[0])
    return {
        "results": len(gathered.records),
        "pending": len(gathered.pending),
        "conditions": len(a.by_condition["summary"]),
        "figures": len(figures),
        "warnings": len(warnings),
        "kl_fit_r2": None if math.isnan(r2) else round(r2, 4),
    }
