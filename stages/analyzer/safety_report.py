"""The safety analyses of phase 2 in one call for ``build.py``: the correlation of safety loss with forgetting, the
HarmBench categories that break first, attack success rates, refusal-direction attenuation, and the page of
qualitative examples. Each lives in its own ``safety_*`` module; this one runs them, collects their tables, figures
and notes, and writes the examples page next to the report. A study without a kind of safety result gets no table or
figure of that kind (attacks and the refusal direction leave no trace at all), never an error.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from stages.analyzer.analysis import Analysis
from stages.analyzer.figures.style import Figure
from stages.analyzer.gather import Gathered
from stages.analyzer.safety_attacks import attack_tables, draw_attacks
from stages.analyzer.safety_categories import aggregate_categories, breaking_order, category_tables, draw_categories
from stages.analyzer.safety_correlation import correlation_frame, correlation_tables, draw_correlation, points_frame
from stages.analyzer.safety_direction import direction_tables, draw_direction
from stages.analyzer.safety_examples import PAGE, example_tables, examples_page, flips_table, read_items
from stages.analyzer.tables import Table


@dataclass
class SafetyReport:
    tables: list[Table] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    examples_page: str | None = None  # relative to the report folder, when written


def safety_report(g: Gathered, a: Analysis, confidence: float, report_dir: Path, formats: list[str], title: str,
                  css: str) -> SafetyReport:
    out = SafetyReport()
    has_safety = bool(len(a.safety))
    if has_safety:
        points = points_frame(a)
        corr = correlation_frame(points, confidence)
        out.tables += correlation_tables(points, corr)
        figs, notes = draw_correlation(points, corr, report_dir, formats)
        out.figures += figs
        out.notes += notes
        cats = aggregate_categories(a, confidence)
        if len(cats):
            order = breaking_order(cats)
            out.tables += category_tables(cats, order)
            figs, notes = draw_categories(cats, order, report_dir, formats)
            out.figures += figs
            out.notes += notes
    tables, by_condition, notes = attack_tables(g, a, confidence)
    out.tables += tables
    out.notes += notes
    out.figures += draw_attacks(by_condition, report_dir, formats)[0]
    tables, by_layer, by_rate, notes = direction_tables(g, a, confidence)
    out.tables += tables
    out.notes += notes
    out.figures += draw_direction(by_layer, by_rate, report_dir, formats)[0]
    items, notes = read_items(g)
    out.notes += notes
    if items:
        flips = flips_table(items, a)
        out.tables += example_tables(flips)
        page = examples_page(items, a, title, css)
        if page is not None:
            report_dir.mkdir(parents=True, exist_ok=True)
            (report_dir / PAGE).write_text(page, encoding="utf-8")
            out.examples_page = PAGE
    return out
