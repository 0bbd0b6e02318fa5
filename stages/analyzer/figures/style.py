"""Shared look of the figures and the one way they are saved (PNG and/or SVG, reproducible metadata).

Figures are built from ``matplotlib.figure.Figure`` directly, never through pyplot's global state, so that drawing
many figures in one process leaks nothing and needs no display.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

from matplotlib.figure import Figure as MplFigure

from stages.analyzer.order import METHODS

METHOD_COLOURS = {
    "GT-SFT": "#1f77b4",
    "SF-SFT": "#17becf",
    "CF-SFT": "#9467bd",
    "SELF": "#8c564b",
    "ON-RL": "#d62728",
    "PI": "#2ca02c",
    "BASE": "#333333",
}
EXTRA_COLOURS = ["#ff7f0e", "#e377c2", "#bcbd22", "#7f7f7f", "#aec7e8", "#ffbb78"]
DOMAIN_MARKERS = {"math": "o", "code": "s", "qa": "^"}
DIVERGING = "RdBu"  # red = worse than base, blue = better; centred on zero
MISSING_FACE = "#e6e6e6"
DPI = 110


@dataclass
class Figure:
    name: str
    title: str
    caption: str
    files: dict[str, str] = field(default_factory=dict)  # format -> path relative to the report folder


def method_colour(method: object) -> str:
    m = str(method)
    if m in METHOD_COLOURS:
        return METHOD_COLOURS[m]
    return EXTRA_COLOURS[sum(map(ord, m)) % len(EXTRA_COLOURS)]


def slug(*parts: object) -> str:
    return "_".join(re.sub(r"[^A-Za-z0-9.]+", "-", str(p)).strip("-") or "none" for p in parts)


def new_figure(width: float, height: float) -> MplFigure:
    return MplFigure(figsize=(width, height), dpi=DPI, layout="constrained")


def save(fig: MplFigure, folder: Path, name: str, formats: list[str]) -> dict[str, str]:
    """Write the figure under ``folder/figures`` in each format; return format -> path relative to ``folder``."""
    (folder / "figures").mkdir(parents=True, exist_ok=True)
    files = {}
    if len(formats) > 1:  # lay out once, then reuse the positions for every format (layout is the slow part)
        fig.draw_without_rendering()
        fig.set_layout_engine("none")
    for fmt in formats:
        rel = f"figures/{name}.{fmt}"
        meta = {"Date": None} if fmt == "svg" else {"Software": None}
        with matplotlib.rc_context({"svg.hashsalt": name, "svg.fonttype": "path"}):
            fig.savefig(folder / rel, format=fmt, dpi=DPI, metadata=meta)
        files[fmt] = rel
    return files


def known_methods_first(methods: list[str]) -> list[str]:
    return [m for m in METHODS if m in methods] + [m for m in methods if m not in METHODS]
